package main

import (
	"fmt"
	"net"
	"os"

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
		var listen, data, keyFile, externalURL, ownerUser, ownerPassword string
		var trustProxy bool
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
generated and printed once.`,
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
					UI: web.Handler(), SMTP: smtp,
				})
				if err != nil {
					return err
				}
				defer srv.Close()
				if ownerUser == "" {
					ownerUser = os.Getenv(envOwnerUsername)
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
		f.StringVar(&externalURL, "external-url", "", "URL agents use to reach this server, put into link tokens (default http://<listen address>)")
		f.StringVar(&ownerUser, "owner-username", "", "first owner's username on first start (default admin; $"+envOwnerUsername+")")
		f.StringVar(&ownerPassword, "owner-password", "", "first owner's password on first start ($"+envOwnerPassword+"; generated when empty)")
		f.BoolVar(&trustProxy, "trust-proxy", false, "take agents' addresses from X-Forwarded-For for access lists")
		smtpConfig = smtpFlags(f) // email notifications: --smtp-* (smtp.go)
		return c
	})
}
