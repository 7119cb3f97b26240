package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/agent"
)

// Environment variables of `livemigrate agent`.
const (
	envLinkToken = "LIVEMIGRATE_LINK_TOKEN"
	envStateDir  = "LIVEMIGRATE_STATE_DIR"
)

// agentStateDir is the flag's value, else the default state directory.
func agentStateDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := os.Getenv(envStateDir); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "livemigrate"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no directory for the agent's credential: give --state-dir (%w)", err)
	}
	return filepath.Join(home, ".local", "state", "livemigrate"), nil
}

func init() {
	register(func(e *env) *cobra.Command {
		var tokenFile, hostname, minVersion, stateDir string
		var sources, passwordFiles []string
		var progressEvery time.Duration
		c := &cobra.Command{
			Use:   "agent",
			Short: "Run a migration host agent with a link token",
			Long: `Run a migration host: register with the control plane named in the link token,
report the source deployments this host reaches, and run the validations and
migrations the control plane asks for.

The link token comes from $` + envLinkToken + ` or --link-token-file. Each source is
--source name=mongodb://user@host:port/?replicaSet=rs0 (repeatable); its password
comes from --source-password-file name=path or $LIVEMIGRATE_SOURCE_<NAME>_PASSWORD
(name upper-cased, other characters as '_'), never from the command line.

The agent keeps its own credential, issued at its first registration, in
--state-dir (default $` + envStateDir + `, else $XDG_STATE_HOME/livemigrate or
~/.local/state/livemigrate; a file of mode 0600). A restarted agent with the same
state directory, link token and hostname resumes its migrations: the control plane
re-sends them and the engine continues from its state on the destination. Without
its credential, a registration of a hostname that already has an agent waits for
an organization owner's approval ('livemigrate agents approve').`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				opts, err := agentOptions(tokenFile, sources, passwordFiles)
				if err != nil {
					return usageError{err}
				}
				opts.Hostname, opts.MinVersion, opts.Version = hostname, minVersion, version
				if opts.StateDir, err = agentStateDir(stateDir); err != nil {
					return usageError{err}
				}
				opts.ProgressInterval, opts.Logger = progressEvery, e.logger
				a, err := agent.New(opts)
				if err != nil {
					return usageError{err}
				}
				err = a.Run(cmd.Context())
				if errors.Is(err, agent.ErrLinkTokenInvalid) || errors.Is(err, agent.ErrAgentRevoked) {
					return exitError{exitFailure, err}
				}
				return err
			},
		}
		f := c.Flags()
		f.StringVar(&tokenFile, "link-token-file", "", "file holding the link token (default $"+envLinkToken+")")
		f.StringArrayVar(&sources, "source", nil, "source deployment as name=connection-string (repeatable)")
		f.StringArrayVar(&passwordFiles, "source-password-file", nil, "password of a source's user as name=path (repeatable)")
		f.StringVar(&stateDir, "state-dir", "", "directory for the agent's credential (default $"+envStateDir+", $XDG_STATE_HOME/livemigrate or ~/.local/state/livemigrate)")
		f.StringVar(&hostname, "hostname", "", "name of this migration host (default the machine's hostname)")
		f.StringVar(&minVersion, "min-mongodb-version", "", "minimum MongoDB version validation requires, on top of 6.0.17+/7.0.13+")
		f.DurationVar(&progressEvery, "progress-interval", 0, "how often to post migration progress (default the control plane's, at most 2s)")
		_ = f.MarkHidden("progress-interval")
		return c
	})
}

// agentOptions reads the link token and the sources with their passwords.
func agentOptions(tokenFile string, sources, passwordFiles []string) (agent.Options, error) {
	var opts agent.Options
	token := os.Getenv(envLinkToken)
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return opts, fmt.Errorf("--link-token-file: %w", err)
		}
		token = string(b)
	}
	opts.LinkToken = strings.TrimSpace(token)
	if opts.LinkToken == "" {
		return opts, fmt.Errorf("no link token: set $%s or --link-token-file (create one with 'livemigrate lm link create')", envLinkToken)
	}
	if len(sources) == 0 {
		return opts, errors.New("no source: give at least one --source name=mongodb://host:port")
	}
	files := map[string]string{}
	for _, pf := range passwordFiles {
		name, path, ok := strings.Cut(pf, "=")
		if !ok || name == "" || path == "" {
			return opts, fmt.Errorf("--source-password-file %q: want name=path", pf)
		}
		files[name] = path
	}
	for _, s := range sources {
		src, err := agent.ParseSource(s)
		if err != nil {
			return opts, err
		}
		if path, ok := files[src.Name]; ok {
			if src.Password, err = agent.ReadPasswordFile(path); err != nil {
				return opts, fmt.Errorf("source %s: %w", src.Name, err)
			}
			delete(files, src.Name)
		} else if pw := os.Getenv(agent.PasswordEnv(src.Name)); pw != "" {
			src.Password = pw
		}
		opts.Sources = append(opts.Sources, src)
	}
	for name := range files {
		return opts, fmt.Errorf("--source-password-file %s: no --source named %q", name, name)
	}
	return opts, nil
}
