package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// envSMTPPassword holds the SMTP relay's password when --smtp-password-file is not given.
const envSMTPPassword = "LIVEMIGRATE_SMTP_PASSWORD"

// smtpFlags adds the email-relay flags of `livemigrate server` to f and
// returns the function that builds the relay configuration from them: nil
// when --smtp-host is empty (email off). The password is read from a file or
// the environment, never a flag value (command lines show in ps).
func smtpFlags(f *pflag.FlagSet) func() (*controlplane.SMTPConfig, error) {
	var host, user, passFile, from, caFile string
	var port int
	var startTLS bool
	f.StringVar(&host, "smtp-host", "", "SMTP relay for email notifications (empty: no email)")
	f.IntVar(&port, "smtp-port", 587, "SMTP relay port")
	f.BoolVar(&startTLS, "smtp-starttls", true, "require STARTTLS with a verified certificate before sending (turn off only for a relay on localhost)")
	f.StringVar(&caFile, "smtp-ca-file", "", "PEM file of the CA certificates that sign the relay's certificate (default: the system's)")
	f.StringVar(&user, "smtp-username", "", "SMTP AUTH PLAIN username (empty: no authentication)")
	f.StringVar(&passFile, "smtp-password-file", "", "file holding the SMTP password ($"+envSMTPPassword+" when not given)")
	f.StringVar(&from, "smtp-from", "", "From address of the notifications, such as livemigrate@example.com")
	return func() (*controlplane.SMTPConfig, error) {
		if host == "" {
			if from != "" || user != "" || passFile != "" {
				return nil, errors.New("--smtp-from, --smtp-username and --smtp-password-file need --smtp-host")
			}
			return nil, nil
		}
		c := &controlplane.SMTPConfig{Host: host, Port: port, StartTLS: startTLS, Username: user, From: from}
		if from == "" {
			return nil, errors.New("--smtp-host needs --smtp-from, the address notifications are sent from")
		}
		if user != "" {
			if passFile != "" {
				b, err := os.ReadFile(passFile)
				if err != nil {
					return nil, fmt.Errorf("read the SMTP password: %w", err)
				}
				c.Password = strings.TrimRight(string(b), "\r\n")
			} else {
				c.Password = os.Getenv(envSMTPPassword)
			}
			if c.Password == "" {
				return nil, fmt.Errorf("--smtp-username %s needs a password: --smtp-password-file or $%s", user, envSMTPPassword)
			}
		}
		if caFile != "" {
			if !startTLS {
				return nil, errors.New("--smtp-ca-file needs --smtp-starttls")
			}
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("read --smtp-ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--smtp-ca-file %s holds no PEM certificate", caFile)
			}
			c.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		return c, nil
	}
}
