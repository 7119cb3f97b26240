package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/cli"
)

func validationCreateCmd(e *env, flags *apiFlags) *cobra.Command {
	return onRequest(e, flags, &cobra.Command{
		Use:   "create",
		Short: "Ask the migration host to check a live migration before it starts",
		Long: `Ask the migration host to check a live migration before it starts: it reaches
the source and the destination, compares versions, checks the source user's
roles, TLS, disk space and existing namespaces. Takes the same flags as
'livemigrate lm create'. Follow the result with
'livemigrate lm validation describe --validationId <id> --watch'.`,
	}, func(c *cobra.Command, f cli.Format, s *session, groupID string, mr api.MigrationRequest) error {
		v, err := s.client.CreateValidation(c.Context(), groupID, mr)
		if err != nil {
			return s.apiError("create validation", err)
		}
		return f.Print(e.stdout, v, validationTable(v, nil))
	})
}

// validationWithChecks is the -o value of `validation describe --checks`.
type validationWithChecks struct {
	api.Validation
	Checks []api.ValidationCheck `json:"checks"`
}

func validationDescribeCmd(e *env, flags *apiFlags) *cobra.Command {
	var projectID, validationID string
	var checks, watch bool
	var interval time.Duration
	c := onSession(e, flags, &cobra.Command{
		Use:     "describe",
		Aliases: []string{"get"},
		Short:   "Show a pre-migration validation and, when it failed, why",
	}, func(c *cobra.Command) error {
		return requireFlags(c, "validationId")
	}, func(c *cobra.Command, f cli.Format, s *session) error {
		ctx := c.Context()
		groupID, err := s.projectID(ctx, projectID)
		if err != nil {
			return err
		}
		fetch := func(ctx context.Context) (api.Validation, error) {
			v, err := s.client.Validation(ctx, groupID, validationID)
			if err != nil {
				return v, s.apiError("describe validation", err)
			}
			return v, nil
		}
		var v api.Validation
		if watch {
			v, err = cli.Watch(ctx, interval, e.stderr, cli.IsTerminal(e.stderr), func(ctx context.Context) (cli.Observation[api.Validation], error) {
				v, err := fetch(ctx)
				return cli.Observation[api.Validation]{Value: v, State: string(v.Status), Final: v.Status != api.ValidationPending,
					Line: fmt.Sprintf("validation %s: %s", v.ID, v.Status)}, err
			})
		} else {
			v, err = fetch(ctx)
		}
		if err != nil {
			return err
		}
		if !checks {
			return f.Print(e.stdout, v, validationTable(v, nil))
		}
		vc, err := s.client.ValidationChecks(ctx, groupID, validationID)
		if err != nil {
			return s.apiError("describe validation checks", err)
		}
		return f.Print(e.stdout, validationWithChecks{v, vc.Checks}, validationTable(v, &vc))
	})
	c.Flags().StringVar(&projectID, "projectId", "", "destination project ID (default: the profile's project_id, or your only project)")
	c.Flags().StringVar(&validationID, "validationId", "", "validation ID (required)")
	c.Flags().BoolVar(&checks, "checks", false, "also show each check the migration host ran (livemigrate extension)")
	c.Flags().BoolVarP(&watch, "watch", "w", false, "poll until the validation is no longer PENDING (progress on stderr)")
	c.Flags().DurationVar(&interval, "interval", 2*time.Second, "poll interval of --watch")
	return c
}
