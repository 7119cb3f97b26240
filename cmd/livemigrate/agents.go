package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/cli"
)

// `livemigrate agents`: the organization's migration host agents and the
// registrations held for an owner's decision (livemigrate extensions).
func init() {
	register(func(e *env) *cobra.Command {
		root := group("agents", "List and revoke migration host agents; approve or reject held registrations (livemigrate extension)")
		flags := addAPIFlags(root)
		root.AddCommand(agentsListCmd(e, flags), agentsRevokeCmd(e, flags), agentsRegistrationsCmd(e, flags),
			agentsDecideCmd(e, flags, true), agentsDecideCmd(e, flags, false))
		return root
	})
}

func oneArg(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 1 || args[0] == "" {
			return usageError{fmt.Errorf("want one argument, the %s (see '%s --help')", what, c.CommandPath())}
		}
		return nil
	}
}

func agentsListCmd(e *env, flags *apiFlags) *cobra.Command {
	var orgID string
	c := onSession(e, flags, &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the organization's migration host agents",
	}, nil, func(c *cobra.Command, f cli.Format, s *session) error {
		ctx := c.Context()
		org, err := s.orgID(ctx, orgID)
		if err != nil {
			return err
		}
		as, err := s.client.Agents(ctx, org)
		if err != nil {
			return s.apiError("list agents", err)
		}
		if as == nil {
			as = []api.Agent{}
		}
		return f.Print(e.stdout, api.Page[api.Agent]{Results: as, TotalCount: len(as)}, func(w io.Writer) error {
			rows := make([][]string, len(as))
			for i, a := range as {
				state := "ONLINE"
				if a.Lost {
					state = "LOST"
				}
				rows[i] = []string{a.ID, a.Hostname, state, a.LastSeenAt.UTC().Format(time.RFC3339), a.RegisteredAt.UTC().Format(time.RFC3339), a.Version}
			}
			return cli.Table(w, []string{"ID", "HOSTNAME", "STATE", "LAST SEEN", "REGISTERED", "VERSION"}, rows...)
		})
	})
	c.Flags().StringVar(&orgID, "orgId", "", "organization ID (default: the profile's org_id, or your only organization)")
	return c
}

func agentsRevokeCmd(e *env, flags *apiFlags) *cobra.Command {
	var orgID string
	var force bool
	c := &cobra.Command{
		Use:   "revoke AGENT_ID",
		Short: "Revoke one migration host agent: refused from its next call; its unfinished migrations fail",
		Args:  oneArg("agent ID (see 'livemigrate agents list')"),
		RunE: func(c *cobra.Command, args []string) error {
			s, org, err := flags.openOrg(e, c, orgID)
			if err != nil {
				return err
			}
			ctx := c.Context()
			if !force {
				ok, err := s.prompt.Confirm(fmt.Sprintf("Revoke agent %s? Its unfinished migrations fail, and registering its hostname again needs an owner's approval.", args[0]))
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintln(e.stdout, "Agent not revoked")
					return nil
				}
			}
			if err := s.client.RevokeAgent(ctx, org, args[0]); err != nil {
				return s.apiError("revoke agent", err)
			}
			fmt.Fprintf(e.stdout, "Agent %s revoked\n", args[0])
			return nil
		},
	}
	c.Flags().StringVar(&orgID, "orgId", "", "organization ID (default: the profile's org_id, or your only organization)")
	c.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return c
}

func registrationTable(hs ...api.HeldRegistration) func(io.Writer) error {
	return func(w io.Writer) error {
		rows := make([][]string, len(hs))
		for i, h := range hs {
			agent := h.AgentID
			if agent == "" {
				agent = "(new)"
			}
			rows[i] = []string{h.ID, h.Hostname, string(h.Status), h.RemoteAddress, agent, h.CreatedAt.UTC().Format(time.RFC3339)}
		}
		if err := cli.Table(w, []string{"ID", "HOSTNAME", "STATUS", "FROM", "REPLACES AGENT", "CREATED"}, rows...); err != nil {
			return err
		}
		for _, h := range hs {
			if h.Status == api.DecisionPending {
				if _, err := fmt.Fprintf(w, "\nRegistration %s: %s\n", h.ID, h.Reason); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func agentsRegistrationsCmd(e *env, flags *apiFlags) *cobra.Command {
	var orgID, status string
	c := onSession(e, flags, &cobra.Command{
		Use:   "registrations",
		Short: "List agent registrations held for an owner's decision (a hostname that has a live agent, or a revoked one)",
	}, nil, func(c *cobra.Command, f cli.Format, s *session) error {
		ctx := c.Context()
		org, err := s.orgID(ctx, orgID)
		if err != nil {
			return err
		}
		hs, err := s.client.AgentRegistrations(ctx, org, api.RegistrationDecision(status))
		if err != nil {
			return s.apiError("list agent registrations", err)
		}
		if hs == nil {
			hs = []api.HeldRegistration{}
		}
		return f.Print(e.stdout, api.Page[api.HeldRegistration]{Results: hs, TotalCount: len(hs)}, registrationTable(hs...))
	})
	c.Flags().StringVar(&orgID, "orgId", "", "organization ID (default: the profile's org_id, or your only organization)")
	c.Flags().StringVar(&status, "status", "PENDING", "PENDING, APPROVED, REJECTED, or empty for all")
	return c
}

func agentsDecideCmd(e *env, flags *apiFlags, approve bool) *cobra.Command {
	var orgID string
	var out *outputFlag
	use, short, verb := "reject REGISTRATION_ID", "Reject a held agent registration", "rejected"
	if approve {
		use, short, verb = "approve REGISTRATION_ID", "Approve a held agent registration: the host becomes the hostname's agent (a live one's credential ends)", "approved"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  oneArg("registration ID (see 'livemigrate agents registrations')"),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := out.format(c)
			if err != nil {
				return err
			}
			s, org, err := flags.openOrg(e, c, orgID)
			if err != nil {
				return err
			}
			ctx := c.Context()
			decide := s.client.RejectAgentRegistration
			if approve {
				decide = s.client.ApproveAgentRegistration
			}
			h, err := decide(ctx, org, args[0])
			if err != nil {
				return s.apiError("decide agent registration", err)
			}
			return f.Print(e.stdout, h, message("Registration %s of migration host %s %s\n", h.ID, h.Hostname, verb))
		},
	}
	c.Flags().StringVar(&orgID, "orgId", "", "organization ID (default: the profile's org_id, or your only organization)")
	out = addOutputFlag(c)
	return c
}
