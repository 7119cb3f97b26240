package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/verify"
)

// stateKeyCommit is the checkpoint.Store state key of the commit report.
const stateKeyCommit = "commit"

// CommitReport is what a finished commit reports.
type CommitReport struct {
	// EventsApplied counts change events applied over the whole run.
	EventsApplied int64 `json:"eventsApplied" bson:"eventsApplied"`
	// DowntimeSeconds is from the operator's commit request (writes
	// stopped) to canWrite.
	DowntimeSeconds float64 `json:"downtimeSeconds" bson:"downtimeSeconds"`
	// VerificationSeconds is the part of the downtime spent verifying.
	VerificationSeconds float64 `json:"verificationSeconds" bson:"verificationSeconds"`
	// DurationSeconds is from the run's start to canWrite (this process).
	DurationSeconds float64 `json:"durationSeconds" bson:"durationSeconds"`
	// Verified says verification found source and destination equal
	// (after repairing the documents it found different).
	Verified bool `json:"verified" bson:"verified"`
	// Repaired counts documents verification re-copied or deleted.
	Repaired int64 `json:"repaired" bson:"repaired"`
	// Namespaces verified.
	Namespaces int `json:"namespaces" bson:"namespaces"`
	// Verification has one entry per namespace verified.
	Verification []NamespaceCheck `json:"verification" bson:"verification"`
	CommittedAt  time.Time        `json:"committedAt" bson:"committedAt"`
}

// NamespaceCheck is one namespace's verification at commit: what it found
// (before repairing it) and how many documents it repaired.
type NamespaceCheck struct {
	Namespace string `json:"namespace" bson:"namespace"`
	Matched   int64  `json:"matched" bson:"matched"`
	Missing   int64  `json:"missing" bson:"missing"`
	Extra     int64  `json:"extra" bson:"extra"`
	Differing int64  `json:"differing" bson:"differing"`
	Repaired  int64  `json:"repaired" bson:"repaired"`
	// Examples are _ids (extended JSON) of documents found different.
	Examples []string `json:"examples,omitempty" bson:"examples,omitempty"`
}

// CommitReport returns the report of a committed run (nil before).
func (e *Engine) CommitReport() *CommitReport {
	c := e.cdc
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.report == nil {
		return nil
	}
	r := *c.report
	return &r
}

// CaptureReader names the change reader in use ("" before change application).
func (e *Engine) CaptureReader() string {
	c := e.cdc
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reader
}

// runCommit runs after the commit point is drained: restore relaxed
// indexes, verify (repairing what differs: FerretDB's oplog can miss a
// write after a crash), then canWrite.
func (e *Engine) runCommit(ctx context.Context) error {
	c := e.cdc
	var prev CommitReport
	if found, err := e.store.LoadState(ctx, stateKeyCommit, &prev); err != nil {
		return err
	} else if found {
		e.finishCommit(prev)
		return nil
	}
	requested := c.requested()
	if requested.IsZero() {
		requested = time.Now()
	}
	if err := e.restoreUniqueIndexes(ctx); err != nil {
		return fmt.Errorf("restore unique indexes: %w", err)
	}
	e.updateProgress(func(p *migration.Progress) { p.Phase = migration.PhaseVerifying })
	vStart := time.Now()
	v, err := verify.New(verify.Options{
		Source: e.src, Destination: e.dst, Include: e.opts.Include, Exclude: e.opts.Exclude,
		Repair: true, MetadataDB: e.opts.MetadataDB,
		// Writes to the source are stopped and the destination is drained:
		// a document that differs now will differ after any wait, so one
		// quick recheck (guarding against a read racing the last apply)
		// and then repair, instead of the live-source backoff (~16 s of
		// downtime per differing partition).
		Rechecks: 1, RecheckBackoff: 100 * time.Millisecond,
	}, e.logger)
	if err != nil {
		return err
	}
	rep, err := v.Run(ctx)
	if err != nil {
		return fmt.Errorf("verify at commit: %w", err)
	}
	report := CommitReport{
		EventsApplied:       e.Progress().TotalEventsApplied,
		VerificationSeconds: time.Since(vStart).Seconds(),
		Namespaces:          len(rep.Namespaces),
		Repaired:            rep.Totals.Repaired,
	}
	var bad []string
	for i := range rep.Namespaces {
		n := &rep.Namespaces[i]
		report.Verification = append(report.Verification, NamespaceCheck{
			Namespace: n.Namespace, Matched: n.Matched, Missing: n.Missing, Extra: n.Extra, Differing: n.Differing, Repaired: n.Repaired,
			Examples: slices.Concat(n.Examples.Missing, n.Examples.Extra, n.Examples.Differing),
		})
		switch {
		case n.Source.Exists != n.Destination.Exists:
			side := "destination"
			if n.Source.Exists {
				side = "source"
			}
			bad = append(bad, fmt.Sprintf("%s exists on the %s only", n.Namespace, side))
		case n.Missing+n.Extra+n.Differing > 0:
			ex := slices.Concat(n.Examples.Missing, n.Examples.Extra, n.Examples.Differing)
			bad = append(bad, fmt.Sprintf("%s: %d missing, %d extra, %d differing (e.g. _id %s)", n.Namespace, n.Missing, n.Extra, n.Differing,
				strings.Join(ex[:min(len(ex), 3)], ", ")))
		}
		if len(n.IndexDiffs)+len(n.OptionDiffs) > 0 {
			w := fmt.Sprintf("%s: %d index and %d option differences after commit (see 'livemigrate verify')", n.Namespace, len(n.IndexDiffs), len(n.OptionDiffs))
			e.updateProgress(func(p *migration.Progress) { p.Warnings = append(p.Warnings, w) })
		}
	}
	report.Verified = len(bad) == 0
	if !report.Verified {
		return fmt.Errorf("verification at commit found differences that repair could not fix (%s); the destination is not marked writable: run 'livemigrate verify' for details", strings.Join(bad, "; "))
	}
	now := time.Now()
	report.CommittedAt = now
	report.DowntimeSeconds = now.Sub(requested).Seconds()
	if started := e.Progress().StartedAt; !started.IsZero() {
		report.DurationSeconds = now.Sub(started).Seconds()
	}
	if err := e.store.SaveState(ctx, stateKeyCommit, report); err != nil {
		return err
	}
	e.finishCommit(report)
	e.logger.Info("committed", "events_applied", report.EventsApplied, "downtime", time.Duration(report.DowntimeSeconds*float64(time.Second)).Round(time.Millisecond),
		"verified", report.Verified, "repaired", report.Repaired)
	return nil
}

func (e *Engine) finishCommit(r CommitReport) {
	c := e.cdc
	c.mu.Lock()
	c.report = &r
	c.mu.Unlock()
	e.updateProgress(func(p *migration.Progress) {
		p.State, p.Phase, p.CanWrite, p.CanCommit, p.LagTimeSeconds = migration.StateCommitted, migration.PhaseCommitted, true, false, 0
	})
}
