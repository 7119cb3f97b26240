package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/cli"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// migrationTarget holds --projectId and --liveMigrationId.
type migrationTarget struct{ projectID, id string }

func addMigrationTarget(c *cobra.Command) *migrationTarget {
	t := &migrationTarget{}
	c.Flags().StringVar(&t.projectID, "projectId", "", "destination project ID (default: the profile's project_id, or your only project)")
	c.Flags().StringVar(&t.id, "liveMigrationId", "", "live migration ID (required)")
	return t
}

// onMigration completes c as a command acting on one live migration: it adds
// --projectId, --liveMigrationId and -o, and its RunE requires
// --liveMigrationId, opens the session, resolves the project and hands run the
// -o format, the session, the project ID and the migration ID.
func onMigration(e *env, flags *apiFlags, c *cobra.Command, run func(c *cobra.Command, f cli.Format, s *session, groupID, id string) error) *cobra.Command {
	t := addMigrationTarget(c)
	return onSession(e, flags, c, func(c *cobra.Command) error {
		return requireFlags(c, "liveMigrationId")
	}, func(c *cobra.Command, f cli.Format, s *session) error {
		groupID, err := s.projectID(c.Context(), t.projectID)
		if err != nil {
			return err
		}
		return run(c, f, s, groupID, t.id)
	})
}

func migrationCreateCmd(e *env, flags *apiFlags) *cobra.Command {
	return onRequest(e, flags, &cobra.Command{
		Use:   "create",
		Short: "Start a live migration",
		Long: `Start a live migration from a source deployment a migration host reaches into a
destination cluster of the project. Run 'livemigrate lm validation create' with
the same flags first. Follow it with 'livemigrate lm describe --watch'.

The source password is never required on the command line: without
--sourcePassword it comes from $` + cli.EnvSourcePassword + `, else it is asked for on the
terminal (no echo) or read as one line from stdin.`,
	}, func(c *cobra.Command, f cli.Format, s *session, groupID string, mr api.MigrationRequest) error {
		m, err := s.client.CreateMigration(c.Context(), groupID, mr)
		if err != nil {
			return s.apiError("create live migration", err)
		}
		return f.Print(e.stdout, m, migrationTable(m))
	})
}

func migrationDescribeCmd(e *env, flags *apiFlags) *cobra.Command {
	var watch bool
	var interval time.Duration
	c := onMigration(e, flags, &cobra.Command{
		Use:     "describe",
		Aliases: []string{"get"},
		Short:   "Show a live migration; --watch follows its progress until its state changes",
		Long: `Show a live migration. With --watch, show its progress (phase, bytes and
documents copied, lag, cutover window) on stderr until its status or readiness
for cutover changes, then print it as without --watch.`,
	}, func(c *cobra.Command, f cli.Format, s *session, groupID, id string) error {
		ctx := c.Context()
		var m api.Migration
		var err error
		if watch {
			var mp api.MigrationProgress
			mp, err = cli.Watch(ctx, interval, e.stderr, cli.IsTerminal(e.stderr), func(ctx context.Context) (cli.Observation[api.MigrationProgress], error) {
				mp, err := s.client.MigrationProgress(ctx, groupID, id)
				if err != nil {
					return cli.Observation[api.MigrationProgress]{}, s.apiError("describe live migration", err)
				}
				return cli.Observation[api.MigrationProgress]{
					Value: mp,
					State: fmt.Sprintf("%s/%t", mp.Migration.Status, mp.Migration.ReadyForCutover),
					Final: mp.Migration.Status != api.MigrationNew && mp.Migration.Status != api.MigrationWorking,
					Line:  progressLine(mp),
				}, nil
			})
			m = mp.Migration
		} else {
			m, err = s.client.Migration(ctx, groupID, id)
			if err != nil {
				err = s.apiError("describe live migration", err)
			}
		}
		if err != nil {
			return err
		}
		return f.Print(e.stdout, m, migrationTable(m))
	})
	c.Flags().BoolVarP(&watch, "watch", "w", false, "show progress until the status or readiness for cutover changes (progress on stderr)")
	c.Flags().DurationVar(&interval, "interval", 2*time.Second, "poll interval of --watch")
	return c
}

// progressLine is one line about a running migration, e.g.
// "WORKING  collection copy  400 B / 1000 B (40%)  4/10 docs  lag 30s".
func progressLine(mp api.MigrationProgress) string {
	m := mp.Migration
	parts := []string{string(m.Status)}
	if p := mp.Progress; p != nil {
		if p.Phase != "" {
			parts = append(parts, p.Phase)
		}
		if p.EstimatedTotalBytes > 0 {
			parts = append(parts, fmt.Sprintf("%s / %s (%d%%)", migration.FormatBytes(p.EstimatedCopiedBytes), migration.FormatBytes(p.EstimatedTotalBytes),
				min(100, p.EstimatedCopiedBytes*100/p.EstimatedTotalBytes)))
		}
		if p.EstimatedTotalDocuments > 0 {
			parts = append(parts, fmt.Sprintf("%d/%d docs", p.CopiedDocuments, p.EstimatedTotalDocuments))
		}
		if p.TotalEventsApplied > 0 {
			parts = append(parts, fmt.Sprintf("%d changes applied", p.TotalEventsApplied))
		}
		if b := p.BackgroundVerification; b != nil && m.Status == api.MigrationWorking {
			parts = append(parts, fmt.Sprintf("verified in background: %d/%d namespaces", b.NamespacesVerified, b.Namespaces))
		}
	}
	if m.LagTimeSeconds != nil {
		parts = append(parts, fmt.Sprintf("lag %ds", *m.LagTimeSeconds))
	}
	if m.ReadyForCutover {
		parts = append(parts, "ready for cutover")
	}
	if w := mp.CutoverWindow; w != nil && m.Status == api.MigrationWorking && mp.CutoverRequestedAt == nil {
		parts = append(parts, "window closes "+w.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if mp.CutoverRequestedAt != nil && m.Status == api.MigrationWorking {
		parts = append(parts, "cutting over")
	}
	switch {
	case m.HostLost != nil:
		parts = append(parts, "HOST LOST: "+m.HostLost.Detail)
	case mp.Stalled:
		parts = append(parts, "STALLED: the migration host is not responding")
	}
	if mp.ErrorMessage != "" {
		parts = append(parts, "error: "+mp.ErrorMessage)
	}
	return strings.Join(parts, "  ")
}

func migrationCutoverCmd(e *env, flags *apiFlags) *cobra.Command {
	return onMigration(e, flags, &cobra.Command{
		Use:   "cutover",
		Short: "Confirm writes to the source are stopped and start the cutover",
		Long: `Start the cutover. First stop your applications' writes to the source: the
migration host then applies the last changes, restores the indexes, verifies
and finalizes. Point your applications at the destination when
'livemigrate lm describe --watch' shows COMPLETE, then read
'livemigrate lm report'.`,
	}, func(c *cobra.Command, f cli.Format, s *session, groupID, id string) error {
		ctx := c.Context()
		if err := s.client.Cutover(ctx, groupID, id); err != nil {
			return s.apiError("start cutover", err)
		}
		if f.IsDefault() {
			fmt.Fprint(e.stdout, "Cutover process successfully started.\n")
			return nil
		}
		m, err := s.client.Migration(ctx, groupID, id)
		if err != nil {
			return s.apiError("describe live migration", err)
		}
		return f.Print(e.stdout, m, nil)
	})
}

func migrationListCmd(e *env, flags *apiFlags) *cobra.Command {
	var projectID string
	c := onSession(e, flags, &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the project's live migrations, newest first (livemigrate extension)",
	}, nil, func(c *cobra.Command, f cli.Format, s *session) error {
		ctx := c.Context()
		groupID, err := s.projectID(ctx, projectID)
		if err != nil {
			return err
		}
		ms, err := s.client.Migrations(ctx, groupID)
		if err != nil {
			return s.apiError("list live migrations", err)
		}
		if ms == nil {
			ms = []api.Migration{}
		}
		return f.Print(e.stdout, api.Page[api.Migration]{Results: ms, TotalCount: len(ms)}, migrationTable(ms...))
	})
	c.Flags().StringVar(&projectID, "projectId", "", "destination project ID (default: the profile's project_id, or your only project)")
	return c
}

func migrationExtendCmd(e *env, flags *apiFlags) *cobra.Command {
	return onMigration(e, flags, &cobra.Command{
		Use:   "extend",
		Short: "Add 24 hours to the cutover window (livemigrate extension)",
	}, func(c *cobra.Command, f cli.Format, s *session, groupID, id string) error {
		w, err := s.client.ExtendCutoverWindow(c.Context(), groupID, id)
		if err != nil {
			return s.apiError("extend cutover window", err)
		}
		return f.Print(e.stdout, w, message("Cutover window successfully extended; it closes at %s.\n", w.ExpiresAt.UTC().Format(time.RFC3339)))
	})
}

func migrationCancelCmd(e *env, flags *apiFlags) *cobra.Command {
	var force bool
	c := onMigration(e, flags, &cobra.Command{
		Use:   "cancel",
		Short: "Stop a live migration before cutover (livemigrate extension)",
		Long: `Stop a live migration before cutover. The migration host stops syncing; the
destination keeps what was copied so far. A cancelled migration cannot resume.`,
	}, func(c *cobra.Command, f cli.Format, s *session, groupID, id string) error {
		if !force {
			ok, err := s.prompt.Confirm(fmt.Sprintf("Are you sure you want to cancel live migration %s? It cannot be resumed.", id))
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintln(e.stdout, "Live migration not cancelled")
				return nil
			}
		}
		m, err := s.client.CancelMigration(c.Context(), groupID, id)
		if err != nil {
			return s.apiError("cancel live migration", err)
		}
		return f.Print(e.stdout, m, migrationTable(m))
	})
	c.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return c
}

func migrationReportCmd(e *env, flags *apiFlags) *cobra.Command {
	return onMigration(e, flags, &cobra.Command{
		Use:   "report",
		Short: "Show the final report of a completed live migration (livemigrate extension)",
	}, func(c *cobra.Command, f cli.Format, s *session, groupID, id string) error {
		r, err := s.client.MigrationReport(c.Context(), groupID, id)
		if err != nil {
			return s.apiError("read live migration report", err)
		}
		return f.Print(e.stdout, r, reportTable(r))
	})
}
