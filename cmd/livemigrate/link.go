package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/cli"
)

func linkCreateCmd(e *env, flags *apiFlags) *cobra.Command {
	var orgID string
	var ips []string
	c := onSession(e, flags, &cobra.Command{
		Use:   "create",
		Short: "Create the link token a migration host's agent registers with (replaces any previous one)",
		Long: `Create the organization's link token. Start 'livemigrate agent' on a migration host
in the source's network with it. The token is shown only now; a new one replaces
the previous token (agents already registered stay registered).`,
	}, nil, func(c *cobra.Command, f cli.Format, s *session) error {
		ctx := c.Context()
		org, err := s.orgID(ctx, orgID)
		if err != nil {
			return err
		}
		tok, err := s.client.CreateLinkToken(ctx, org, api.LinkTokenRequest{AccessListIPs: ips})
		if err != nil {
			return s.apiError("create link token", err)
		}
		return f.Print(e.stdout, tok, message("Link-token '%s' successfully created.\n", tok.LinkToken))
	})
	c.Flags().StringVar(&orgID, "orgId", "", "organization ID (default: the profile's org_id, or your only organization)")
	c.Flags().StringSliceVar(&ips, "accessListIp", nil, "IP address or CIDR block agents may connect from (repeatable; default any)")
	return c
}

func linkDeleteCmd(e *env, flags *apiFlags) *cobra.Command {
	var orgID string
	var force bool
	c := &cobra.Command{
		Use:     "delete",
		Aliases: []string{"rm"},
		Short:   "Delete the link token and revoke the organization's migration hosts",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, org, err := flags.openOrg(e, c, orgID)
			if err != nil {
				return err
			}
			ctx := c.Context()
			if !force {
				ok, err := s.prompt.Confirm(fmt.Sprintf("Are you sure you want to delete the link-token of organization %s? Its migration hosts are revoked.", org))
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintln(e.stdout, "Link-token not deleted")
					return nil
				}
			}
			if err := s.client.DeleteLinkToken(ctx, org); err != nil {
				return s.apiError("delete link token", err)
			}
			fmt.Fprintf(e.stdout, "Link-token %s successfully deleted\n", org)
			return nil
		},
	}
	c.Flags().StringVar(&orgID, "orgId", "", "organization ID (default: the profile's org_id, or your only organization)")
	c.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return c
}
