package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/cli"
)

func TestProfiles(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)

	show := e.run("", "config", "show")
	wantExit(t, show, 0)
	showJSON := e.run("", "config", "show", "-o", "json")
	wantExit(t, showJSON, 0)
	for _, r := range []cliResult{show, showJSON} {
		if strings.Contains(r.stdout+r.stderr, e.privateKey) {
			t.Fatalf("config show printed the private key: %s", r.stdout)
		}
	}
	info, err := os.Stat(e.config)
	cliMust(t, err)
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("config file mode = %v, want 0600 (it holds private keys)", perm)
	}

	// A second profile with a wrong key; the private key is read from stdin.
	setURL := e.run("", "config", "set", "--profile", "staging", "base_url", e.url)
	wantExit(t, setURL, 0)
	setPub := e.run("", "config", "set", "--profile", "staging", "public_api_key", "nobody")
	wantExit(t, setPub, 0)
	setPriv := e.run("wrong-key\n", "config", "set", "--profile", "staging", "private_api_key")
	wantExit(t, setPriv, 0)
	setProject := e.run("", "config", "set", "--profile", "staging", "project_id", e.groupID)
	wantExit(t, setProject, 0)
	list := e.run("", "config", "list", "--profile", "staging")
	wantExit(t, list, 0)
	unauthorized := e.run("", "lm", "list", "--profile", "staging")
	wantExit(t, unauthorized, 1)
	unknownProfile := e.run("", "lm", "list", "--profile", "prod")
	wantExit(t, unknownProfile, 2)
	unknownKey := e.run("", "config", "set", "color", "blue")
	wantExit(t, unknownKey, 2)
	e.golden("config", show, showJSON, setURL, setPub, setPriv, setProject, list, unauthorized, unknownProfile, unknownKey)

	cfg, err := cli.LoadConfig(e.config)
	cliMust(t, err)
	if got := cfg.Profiles["staging"].PrivateAPIKey; got != "wrong-key" {
		t.Errorf("private key read from stdin = %q, want wrong-key", got)
	}

	// No credentials at all: a usage error that says how to set them.
	empty := e.runConfig(filepath.Join(t.TempDir(), "none.json"), "", "lm", "list")
	wantExit(t, empty, 2)
	if !strings.Contains(empty.stderr, cli.EnvPublicAPIKey) {
		t.Errorf("error without credentials does not name $%s: %s", cli.EnvPublicAPIKey, empty.stderr)
	}
}

// runConfig runs the CLI with another config file.
func (e *cpEnv) runConfig(config, stdin string, args ...string) cliResult {
	saved := e.config
	e.config = config
	defer func() { e.config = saved }()
	return e.run(stdin, args...)
}

// TestProfileEnvironment checks that environment variables override the
// profile (not parallel: it sets the process environment).
func TestProfileEnvironment(t *testing.T) {
	e := startControlPlane(t)
	empty := filepath.Join(t.TempDir(), "none.json")
	t.Setenv(cli.EnvBaseURL, e.url)
	t.Setenv(cli.EnvPublicAPIKey, e.publicKey)
	t.Setenv(cli.EnvPrivateAPIKey, e.privateKey)
	t.Setenv(cli.EnvProjectID, e.groupID)
	t.Setenv(cli.EnvSourcePassword, "env-password")
	list := e.runConfig(empty, "", "lm", "list")
	wantExit(t, list, 0)
	create := e.runConfig(empty, "", requestArgs("lm", "create")...)
	wantExit(t, create, 0)
	if spec := e.startWork(cliHexID.FindString(create.stdout)); spec.Request.Source.Password != "env-password" {
		t.Errorf("source password = %q, want $%s's", spec.Request.Source.Password, cli.EnvSourcePassword)
	}
	show := e.runConfig(empty, "", "config", "show")
	wantExit(t, show, 0)
	if strings.Contains(show.stdout, e.privateKey) {
		t.Fatalf("config show printed the private key from the environment")
	}
	// The profile file's wrong key loses to the environment.
	t.Setenv(cli.EnvPrivateAPIKey, "wrong")
	bad := e.run("", "lm", "list")
	wantExit(t, bad, 1)
	e.golden("config_env", list, show, bad)
}

func TestControlPlaneUnreachable(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)
	down := filepath.Join(t.TempDir(), "down.json")
	for _, kv := range [][2]string{{"base_url", "http://127.0.0.1:1"}, {"public_api_key", "k"}, {"private_api_key", "p"}, {"project_id", e.groupID}} {
		wantExit(t, e.runConfig(down, "", "config", "set", kv[0], kv[1]), 0)
	}
	r := e.runConfig(down, "", "lm", "list")
	wantExit(t, r, 1)
	if !strings.Contains(r.stderr, "is the control plane at http://127.0.0.1:1 running?") {
		t.Errorf("error for an unreachable control plane gives no advice: %s", r.stderr)
	}
}
