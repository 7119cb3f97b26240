package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/cli"
)

// outputFlag is the -o flag shared by the Admin API commands.
type outputFlag struct{ value string }

func addOutputFlag(c *cobra.Command) *outputFlag {
	o := &outputFlag{}
	c.Flags().StringVarP(&o.value, "output", "o", "", cli.FormatHelp)
	return o
}

// format parses the flag; a bad value is a usage error.
func (o *outputFlag) format(c *cobra.Command) (cli.Format, error) {
	f, err := cli.ParseFormat(o.value)
	if err != nil {
		return f, usageError{fmt.Errorf("-o: %w (see '%s --help')", err, c.CommandPath())}
	}
	return f, nil
}

// Default outputs, as `atlas liveMigrations` prints them.

func migrationRow(m api.Migration) []string {
	lag := "<nil>" // as the atlas CLI's template prints a missing lag
	if m.LagTimeSeconds != nil {
		lag = strconv.FormatInt(*m.LagTimeSeconds, 10)
	}
	return []string{m.ID, lag, strconv.FormatBool(m.ReadyForCutover), string(m.Status)}
}

var migrationHeader = []string{"ID", "LAGTIME", "READY FOR CUTOVER", "STATUS"}

func migrationTable(ms ...api.Migration) func(io.Writer) error {
	return func(w io.Writer) error {
		rows := make([][]string, len(ms))
		for i, m := range ms {
			rows[i] = migrationRow(m)
		}
		if err := cli.Table(w, migrationHeader, rows...); err != nil {
			return err
		}
		// Atlas's table has no column for it: a lost host is said below.
		for _, m := range ms {
			if m.HostLost != nil {
				if _, err := fmt.Fprintf(w, "\nLive migration %s: %s\n", m.ID, m.HostLost.Detail); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// validationTable prints Atlas's table, then the error message of a failed
// validation and, when asked, the agent's per-check results.
func validationTable(v api.Validation, checks *api.ValidationChecks) func(io.Writer) error {
	return func(w io.Writer) error {
		if err := cli.Table(w, []string{"ID", "PROJECT ID", "SOURCE PROJECT ID", "STATUS"},
			[]string{v.ID, v.GroupID, v.SourceGroupID, string(v.Status)}); err != nil {
			return err
		}
		if v.ErrorMessage != "" {
			fmt.Fprintf(w, "Error message: %s\n", v.ErrorMessage)
		}
		if checks != nil {
			fmt.Fprintln(w)
			rows := make([][]string, len(checks.Checks))
			for i, c := range checks.Checks {
				rows[i] = []string{c.Name, string(c.Status), c.Message}
			}
			return cli.Table(w, []string{"CHECK", "STATUS", "MESSAGE"}, rows...)
		}
		return nil
	}
}

func reportTable(r api.MigrationReport) func(io.Writer) error {
	return func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		rows := [][2]string{
			{"MIGRATION ID", r.MigrationID},
			{"COMPLETED AT", r.CompletedAt.UTC().Format(time.RFC3339)},
			{"CHANGES SYNCED", i64(r.ChangesSynced)},
			{"DOWNTIME", seconds(r.DowntimeSeconds)},
		}
		d := r.Downtime
		if d != nil {
			verification := seconds(d.VerificationSeconds)
			if d.VerificationMode == "after" {
				verification += " (after the destination became writable)"
			}
			rows = append(rows, [][2]string{
				{"  COMMIT POINT", seconds(d.CommitPointSeconds)},
				{"  DRAIN", seconds(d.DrainSeconds)},
				{"  INDEX RESTORE", seconds(d.IndexRestoreSeconds)},
				{"  VERIFICATION", verification},
				{"  OTHER", seconds(d.OtherSeconds)},
			}...)
		}
		rows = append(rows, [][2]string{
			{"DURATION", seconds(r.DurationSeconds)},
			{"BYTES COPIED", i64(r.BytesCopied)},
			{"COLLECTIONS COPIED", strconv.Itoa(r.CollectionsCopied)},
			{"VERIFICATION", string(r.Verification.Status)},
		}...)
		if d != nil {
			f := d.FoundBeforeRepair
			cov := "complete"
			if !d.Coverage.Complete {
				cov = "INCOMPLETE"
			}
			cov += fmt.Sprintf(": %d namespaces, %d by background pass, %d compared in full", d.Coverage.Namespaces, d.Coverage.NamespacesByPass, len(d.Coverage.ComparedInFull))
			rows = append(rows, [][2]string{
				{"  MODE", d.VerificationMode},
				{"  DOCUMENTS RECHECKED", i64(d.DocumentsRechecked)},
				{"  FOUND BEFORE REPAIR", fmt.Sprintf("%d missing, %d extra, %d differing", f.Missing, f.Extra, f.Differing)},
				{"  REPAIRED", i64(d.Repaired)},
				{"  COVERAGE", cov},
			}...)
			if b := d.Background; b != nil {
				rows = append(rows, [2]string{"  BACKGROUND", backgroundLine(b)})
			}
		}
		for _, kv := range rows {
			fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if d != nil {
			for _, n := range d.Coverage.ComparedInFull {
				fmt.Fprintf(w, "Compared in full at commit: %s (%s)\n", n.Namespace, n.Reason)
			}
		}
		if r.Verification.Message != "" {
			fmt.Fprintf(w, "Verification: %s\n", r.Verification.Message)
		}
		if len(r.Verification.Namespaces) == 0 {
			return nil
		}
		fmt.Fprintln(w)
		nrows := make([][]string, len(r.Verification.Namespaces))
		for i, n := range r.Verification.Namespaces {
			nrows[i] = []string{n.Namespace, i64(n.Matched), i64(n.Missing), i64(n.Extra), i64(n.Differing)}
		}
		return cli.Table(w, []string{"NAMESPACE", "MATCHED", "MISSING", "EXTRA", "DIFFERING"}, nrows...)
	}
}

// backgroundLine is the continuous verifier's share, e.g. "9/9 namespaces
// verified, 100000 documents compared in 9 passes (0 voided), 12 rechecked,
// paused 2 times (3.1s), slowed 1.2s".
func backgroundLine(b *api.BackgroundVerification) string {
	return fmt.Sprintf("%d/%d namespaces verified, %d documents compared in %d passes (%d voided), %d rechecked, paused %d times (%s), slowed %s",
		b.NamespacesVerified, b.Namespaces, b.DocumentsCompared, b.Passes, b.PassesInvalidated, b.DocumentsRechecked, b.Pauses, seconds(b.PausedSeconds), seconds(b.SlowedSeconds))
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// seconds prints a duration given in seconds, e.g. 3.5s, 10m0s.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}

// message prints a fixed message as the default output.
func message(format string, args ...any) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := fmt.Fprintf(w, format, args...)
		return err
	}
}
