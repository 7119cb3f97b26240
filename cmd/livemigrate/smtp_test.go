package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestSMTPFlags: the relay settings of `livemigrate server`, the password
// only from a file or the environment, and every incomplete combination
// refused with what to add.
func TestSMTPFlags(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pwFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(env string, args ...string) (string, error) {
		t.Setenv(envSMTPPassword, env)
		f := pflag.NewFlagSet("server", pflag.ContinueOnError)
		cfg := smtpFlags(f)
		if err := f.Parse(args); err != nil {
			return "", err
		}
		c, err := cfg()
		if err != nil || c == nil {
			return "", err
		}
		return c.Host + "|" + c.From + "|" + c.Username + "|" + c.Password + "|" + map[bool]string{true: "starttls", false: "plain"}[c.StartTLS], nil
	}
	for _, tc := range []struct {
		name, env string
		args      []string
		want      string // the config, or the error's words
		fails     bool
	}{
		{"off", "", nil, "", false},
		{"password file", "", []string{"--smtp-host", "relay.example.com", "--smtp-from", "lm@example.com", "--smtp-username", "lm", "--smtp-password-file", pwFile}, "relay.example.com|lm@example.com|lm|file-secret|starttls", false},
		{"password from the environment", "env-secret", []string{"--smtp-host", "relay.example.com", "--smtp-from", "lm@example.com", "--smtp-username", "lm"}, "relay.example.com|lm@example.com|lm|env-secret|starttls", false},
		{"no authentication, no STARTTLS", "", []string{"--smtp-host", "localhost", "--smtp-port", "25", "--smtp-starttls=false", "--smtp-from", "lm@example.com"}, "localhost|lm@example.com|||plain", false},
		{"no password", "", []string{"--smtp-host", "relay.example.com", "--smtp-from", "lm@example.com", "--smtp-username", "lm"}, "needs a password", true},
		{"no from", "", []string{"--smtp-host", "relay.example.com"}, "needs --smtp-from", true},
		{"from without host", "", []string{"--smtp-from", "lm@example.com"}, "need --smtp-host", true},
		{"unreadable password file", "", []string{"--smtp-host", "h", "--smtp-from", "a@b.c", "--smtp-username", "u", "--smtp-password-file", filepath.Join(dir, "missing")}, "read the SMTP password", true},
		{"CA file without a certificate", "", []string{"--smtp-host", "h", "--smtp-from", "a@b.c", "--smtp-ca-file", notPEM}, "holds no PEM certificate", true},
		{"no password flag", "", []string{"--smtp-password", "x"}, "unknown flag", true},
	} {
		got, err := build(tc.env, tc.args...)
		switch {
		case tc.fails && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %q, %v; want an error saying %q", tc.name, got, err, tc.want)
		case tc.fails && (strings.Contains(err.Error(), "file-secret") || strings.Contains(err.Error(), "env-secret")):
			t.Errorf("%s: the error %v holds the password", tc.name, err)
		case !tc.fails && (err != nil || got != tc.want):
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
