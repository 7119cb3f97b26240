package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/web"
)

// Environment variables of `livemigrate server`.
const (
	envSecretKey     = "LIVEMIGRATE_SECRET_KEY"
	envOwnerUsername = "LIVEMIGRATE_OWNER_USERNAME"
	envOwnerPassword = "LIVEMIGRATE_OWNER_PASSWORD"
)

func init() {
	register(func(e *env) *cobra.Command {
		var listen, data, keyFile, externalURL, ownerUser, ownerPassword, ownerPasswordFile string
		var trustProxy, webhookAllowPrivate bool
		var smtpConfig func() (*controlplane.SMTPConfig, error)
		c := &cobra.Command{
			Use:   "server",
			Short: "Run the control plane: Admin API, web UI, agent endpoint",
			Long: `Run the control plane: the Atlas-shaped Admin API under /api/atlas/v2, the agent
endpoint under /api/agent/v1, /metrics, and the store (one SQLite file).

Secrets at rest are encrypted with a 32-byte key from $` + envSecretKey + ` (base64)
or the key file (created with a new key on first start). Keep the key file: without
it the stored credentials cannot be read.

On the first start an owner is created: --owner-username/--owner-password or
$` + envOwnerUsername + `/$` + envOwnerPassword + `; without a password one is
generated and printed once. A password given with --owner-password is visible to
other users of the machine (ps): prefer --owner-password-file or the environment.

The data file and its WAL are kept mode 0600 (tightened at start when looser). A
key that does not open the store's secrets stops the start with an error. With an
https:// --external-url the session cookie is Secure (TLS ending at a proxy).
Webhooks may not target loopback, link-local (cloud metadata), private or CGNAT
addresses unless --webhook-allow-private is given.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				if keyFile == "" {
					keyFile = data + ".key"
				}
				key, err := controlplane.LoadKey(keyFile, os.Getenv(envSecretKey))
				if err != nil {
					return err
				}
				if st, err := os.Stat(keyFile); err == nil && os.Getenv(envSecretKey) == "" && st.Mode().Perm()&0o077 != 0 {
					if err := os.Chmod(keyFile, 0o600); err != nil {
						return fmt.Errorf("key file %s is readable by others (mode %v) and cannot be made 0600: %w", keyFile, st.Mode().Perm(), err)
					}
					e.logger.Warn("key file was readable by others; its mode is now 0600", "path", keyFile, "was", st.Mode().Perm().String())
				}
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("listen on %s: %w", listen, err)
				}
				defer ln.Close()
				if externalURL == "" {
					externalURL = "http://" + ln.Addr().String()
				}
				smtp, err := smtpConfig()
				if err != nil {
					return err
				}
				srv, err := controlplane.New(ctx, controlplane.Options{
					DataPath: data, Key: key, ExternalURL: externalURL, Logger: e.logger, TrustProxy: trustProxy,
					WebhookAllowPrivate: webhookAllowPrivate,
					UI:                  web.Handler(),
					SMTP:                smtp,
				})
				if err != nil {
					return err
				}
				defer srv.Close()
				if ownerUser == "" {
					ownerUser = os.Getenv(envOwnerUsername)
				}
				if ownerPassword != "" {
					e.logger.Warn("--owner-password is visible to other users of this machine (ps); use --owner-password-file or $" + envOwnerPassword)
				}
				if ownerPasswordFile != "" {
					b, err := os.ReadFile(ownerPasswordFile)
					if err != nil {
						return fmt.Errorf("read --owner-password-file: %w", err)
					}
					ownerPassword = strings.TrimRight(string(b), "\r\n")
				}
				if ownerPassword == "" {
					ownerPassword = os.Getenv(envOwnerPassword)
				}
				created, password, orgID, err := srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: ownerUser, Password: ownerPassword})
				if err != nil {
					return fmt.Errorf("create first owner: %w", err)
				}
				if created {
					if ownerUser == "" {
						ownerUser = "admin"
					}
					fmt.Fprintf(e.stdout, "Created organization %s with owner %q.\n", orgID, ownerUser)
					if ownerPassword == "" {
						fmt.Fprintf(e.stdout, "Password: %s\n(shown only now; store it safely)\n", password)
					}
					fmt.Fprintf(e.stdout, "Log in at %s with that user (HTTP Basic for the API, POST /api/session for a browser session).\n", externalURL)
				}
				return srv.Serve(ctx, ln)
			},
		}
		f := c.Flags()
		f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
		f.StringVar(&data, "data", "livemigrate.db", "SQLite data file")
		f.StringVar(&keyFile, "key-file", "", "secrets key file (default <data>.key; $"+envSecretKey+" overrides)")
		f.StringVar(&externalURL, "external-url", "", "URL agents and browsers use to reach this server, put into link tokens; https:// makes the session cookie Secure (default http://<listen address>)")
		f.StringVar(&ownerUser, "owner-username", "", "first owner's username on first start (default admin; $"+envOwnerUsername+")")
		f.StringVar(&ownerPassword, "owner-password", "", "first owner's password on first start ($"+envOwnerPassword+"; generated when empty)")
		f.StringVar(&ownerPasswordFile, "owner-password-file", "", "file holding the first owner's password (one line)")
		f.BoolVar(&webhookAllowPrivate, "webhook-allow-private", false, "let webhooks target loopback, link-local and private addresses")
		f.BoolVar(&trustProxy, "trust-proxy", false, "take agents' addresses from X-Forwarded-For for access lists")
		smtpConfig = smtpFlags(f) // email notifications: --smtp-* (smtp.go)
		return c
	})
}
