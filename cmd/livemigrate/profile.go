package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/cli"
	"github.com/livemigrate/livemigrate/internal/client"
)

// apiFlags are the persistent flags of the Admin API command groups: which
// profile of which config file holds the control plane address and credentials.
type apiFlags struct{ profile, config string }

func addAPIFlags(c *cobra.Command) *apiFlags {
	f := &apiFlags{}
	c.PersistentFlags().StringVarP(&f.profile, "profile", "P", "", "profile with the control plane address and credentials (default $"+cli.EnvProfile+" or \"default\")")
	c.PersistentFlags().StringVar(&f.config, "config", "", "config file (default $"+cli.EnvConfig+" or <user config dir>/livemigrate/config.json)")
	return f
}

func (f *apiFlags) configPath() (string, error) {
	if f.config != "" {
		return f.config, nil
	}
	return cli.ConfigPath(os.Getenv)
}

// load reads the config file: its path, its content and the name of the
// profile selected (--profile, else $LIVEMIGRATE_PROFILE, else "default").
func (f *apiFlags) load() (path string, cfg cli.Config, profile string, err error) {
	if path, err = f.configPath(); err != nil {
		return "", cfg, "", err
	}
	if cfg, err = cli.LoadConfig(path); err != nil {
		return path, cfg, "", err
	}
	return path, cfg, cli.ProfileName(f.profile, os.Getenv), nil
}

// resolve loads the config and returns the effective profile.
func (f *apiFlags) resolve() (cli.Resolved, string, error) {
	path, cfg, name, err := f.load()
	if err != nil {
		return cli.Resolved{}, path, err
	}
	r, err := cli.Resolve(cfg, name, os.Getenv)
	if err != nil {
		return r, path, usageError{err}
	}
	return r, path, nil
}

// session is what an Admin API command works with: an authenticated client,
// the profile's defaults and a prompter.
type session struct {
	e       *env
	cmd     *cobra.Command
	profile cli.Resolved
	client  *client.Client
	prompt  *cli.Prompter
}

func (f *apiFlags) open(e *env, c *cobra.Command) (*session, error) {
	r, _, err := f.resolve()
	if err != nil {
		return nil, err
	}
	p := r.Profile
	if p.PublicAPIKey == "" || p.PrivateAPIKey == "" {
		return nil, usageError{fmt.Errorf("no API key for profile %q: set $%s and $%s, or run 'livemigrate config set --profile %s %s <public key>' and '… %s' (a user's username and password work too)",
			r.Name, cli.EnvPublicAPIKey, cli.EnvPrivateAPIKey, r.Name, cli.KeyPublicAPIKey, cli.KeyPrivateAPIKey)}
	}
	return &session{
		e: e, cmd: c, profile: r,
		client: client.New(p.BaseURL, client.BasicAuth(p.PublicAPIKey, p.PrivateAPIKey)),
		prompt: cli.NewPrompter(e.stdin, e.stderr),
	}, nil
}

// openOrg opens the session and resolves the organization (orgID, else the
// profile's): the prologue of the organization-scoped commands that take
// arguments and so cannot go through onSession.
func (f *apiFlags) openOrg(e *env, c *cobra.Command, orgID string) (*session, string, error) {
	s, err := f.open(e, c)
	if err != nil {
		return nil, "", err
	}
	org, err := s.orgID(c.Context(), orgID)
	if err != nil {
		return nil, "", err
	}
	return s, org, nil
}

// onSession completes c as an Admin API command: it adds -o, and its RunE
// checks the -o format, then the flags with check (usage errors come before
// any call; check may be nil), opens the session and hands both to run.
func onSession(e *env, flags *apiFlags, c *cobra.Command, check func(*cobra.Command) error, run func(c *cobra.Command, f cli.Format, s *session) error) *cobra.Command {
	out := addOutputFlag(c)
	c.Args = noArgs
	c.RunE = func(c *cobra.Command, _ []string) error {
		f, err := out.format(c)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(c); err != nil {
				return err
			}
		}
		s, err := flags.open(e, c)
		if err != nil {
			return err
		}
		return run(c, f, s)
	}
	return c
}

// apiError names the operation and adds advice for authentication failures.
func (s *session) apiError(op string, err error) error {
	var ae *client.APIError
	switch {
	case client.IsUnauthorized(err):
		return fmt.Errorf("%s: %w (check the API key of profile %q with 'livemigrate config show')", op, err, s.profile.Name)
	case !errors.As(err, &ae) && s.cmd.Context().Err() == nil:
		return fmt.Errorf("%s: %w (is the control plane at %s running? check base_url with 'livemigrate config show')", op, err, s.client.BaseURL())
	}
	return fmt.Errorf("%s: %w", op, err)
}

// orgID returns the organization: the flag, else the profile ($LIVEMIGRATE_ORG_ID
// or org_id), else the caller's only organization.
func (s *session) orgID(ctx context.Context, flag string) (string, error) {
	return s.defaultID(flag, "--orgId", s.profile.Profile.OrgID, cli.KeyOrgID, "organizations", func() ([]string, error) {
		orgs, err := s.client.Orgs(ctx)
		ids := make([]string, len(orgs))
		for i, o := range orgs {
			ids[i] = o.ID
		}
		return ids, err
	})
}

// projectID returns the project: the flag, else the profile, else the
// caller's only project.
func (s *session) projectID(ctx context.Context, flag string) (string, error) {
	return s.defaultID(flag, "--projectId", s.profile.Profile.ProjectID, cli.KeyProjectID, "projects", func() ([]string, error) {
		ps, err := s.client.Projects(ctx)
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		return ids, err
	})
}

// defaultID is the ID a command acts on: the flag's value, else the profile's
// key, else the only one of the IDs the caller sees (list); with none or
// several, the flag is required (usage error).
func (s *session) defaultID(flag, flagName, profile, key, what string, list func() ([]string, error)) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if profile != "" {
		return profile, nil
	}
	ids, err := list()
	if err != nil {
		return "", s.apiError("list "+what, err)
	}
	if len(ids) == 1 {
		return ids[0], nil
	}
	return "", usageError{fmt.Errorf("%s is required: you see %d %s (or set %s in the profile)", flagName, len(ids), what, key)}
}

// requireFlags returns a usage error naming the required flags that are not set.
func requireFlags(c *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if !c.Flags().Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageError{fmt.Errorf("required flag(s) %s not set (see '%s --help')", strings.Join(missing, ", "), c.CommandPath())}
	}
	return nil
}

// noArgs rejects positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (see '%s --help')", args[0], c.CommandPath())}
	}
	return nil
}

// group returns a command that only holds subcommands: run alone it prints
// its help; with an unknown subcommand it is a usage error.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return c.Help()
		},
	}
}

func init() {
	register(func(e *env) *cobra.Command {
		root := group("config", "Manage profiles: the control plane address and credentials of the CLI")
		root.Long = `Manage profiles: the control plane address and credentials the link, validation
and migration commands use.

Profiles live in one JSON file, readable only by you: $` + cli.EnvConfig + `, else
<user config dir>/livemigrate/config.json. Pick one with --profile or $` + cli.EnvProfile + `
(default "default"). Each key can be overridden by an environment variable:

  base_url         $` + cli.EnvBaseURL + ` (default ` + cli.DefaultBaseURL + `)
  public_api_key   $` + cli.EnvPublicAPIKey + `
  private_api_key  $` + cli.EnvPrivateAPIKey + `
  org_id           $` + cli.EnvOrgID + `
  project_id       $` + cli.EnvProjectID + `

The private key is never printed. A user's username and password may stand in
for the public and private key.`
		flags := addAPIFlags(root)
		root.AddCommand(configSetCmd(e, flags), configShowCmd(e, flags), configListCmd(e, flags))
		return root
	})
}

func configSetCmd(e *env, flags *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "set <key> [value]",
		Short: "Set a profile key (private_api_key without a value is prompted for)",
		Long: `Set a key of the profile: base_url, public_api_key, private_api_key, org_id or
project_id. An empty value unsets the key. Without a value, the value is read
from the terminal without echo (or one line of stdin), so the private key need
not appear on the command line. Put -- before a value that starts with a dash:
livemigrate config set public_api_key -- -abc123`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("want <key> [value], got %d arguments (see '%s --help')", len(args), c.CommandPath())}
			}
			if !cli.HasKey(args[0]) {
				return usageError{fmt.Errorf("%w %q: want one of %s", cli.ErrUnknownKey, args[0], strings.Join(cli.Keys(), ", "))}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			path, cfg, name, err := flags.load()
			if err != nil {
				return err
			}
			key := args[0]
			var value string
			if len(args) == 2 {
				value = args[1]
			} else {
				value, err = cli.NewPrompter(e.stdin, e.stderr).Secret(c.Context(), key+": ")
				if err != nil {
					return fmt.Errorf("read %s: %w", key, err)
				}
			}
			p := cfg.Profiles[name]
			if err := p.Set(key, value); err != nil {
				return usageError{err}
			}
			cfg.Profiles[name] = p
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Profile %q: %s %s.\n", name, key, map[bool]string{true: "unset", false: "set"}[value == ""])
			return nil
		},
	}
}

func configShowCmd(e *env, flags *apiFlags) *cobra.Command {
	out := &outputFlag{}
	c := &cobra.Command{
		Use:   "show",
		Short: "Show the effective profile and where each value comes from (secrets hidden)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f, err := out.format(c)
			if err != nil {
				return err
			}
			r, path, err := flags.resolve()
			if err != nil {
				return err
			}
			view := map[string]string{"profile": r.Name, "config": path}
			rows := [][]string{}
			for _, s := range r.Settings {
				if s.Value != "" {
					view[s.Key] = s.Display()
				}
				src := s.Source
				if src == "" {
					src = "-"
				}
				rows = append(rows, []string{s.Key, s.Display(), src})
			}
			return f.Print(e.stdout, view, func(w io.Writer) error {
				fmt.Fprintf(w, "Profile %q (config %s)\n", r.Name, path)
				return cli.Table(w, []string{"KEY", "VALUE", "SOURCE"}, rows...)
			})
		},
	}
	c.Flags().StringVarP(&out.value, "output", "o", "", cli.FormatHelp)
	return c
}

func configListCmd(e *env, flags *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the profiles of the config file",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, cfg, current, err := flags.load()
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, n := range cfg.Names() {
				mark := ""
				if n == current {
					mark = "*"
				}
				rows = append(rows, []string{n, cfg.Profiles[n].BaseURL, mark})
			}
			return cli.Table(e.stdout, []string{"PROFILE", "BASE URL", "CURRENT"}, rows...)
		},
	}
}
