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
	// Mode is the verification mode the commit ran with.
	Mode VerifyMode `json:"verificationMode" bson:"mode"`
	// EventsApplied counts change events applied over the whole run.
	EventsApplied int64 `json:"eventsApplied" bson:"eventsApplied"`
	// DowntimeSeconds is from the operator's commit request (writes
	// stopped) to canWrite. Its parts, measured in the process that
	// committed: CommitPointSeconds (reading the source's newest
	// position), DrainSeconds (applying up to it), IndexRestoreSeconds
	// (unique indexes made unique again) and VerificationSeconds (the
	// part spent verifying; after canWrite in mode "after").
	DowntimeSeconds     float64 `json:"downtimeSeconds" bson:"downtimeSeconds"`
	CommitPointSeconds  float64 `json:"commitPointSeconds" bson:"commitPointSeconds"`
	DrainSeconds        float64 `json:"drainSeconds" bson:"drainSeconds"`
	IndexRestoreSeconds float64 `json:"indexRestoreSeconds" bson:"indexRestoreSeconds"`
	VerificationSeconds float64 `json:"verificationSeconds" bson:"verificationSeconds"`
	// DurationSeconds is from the run's start to canWrite (this process).
	DurationSeconds float64 `json:"durationSeconds" bson:"durationSeconds"`
	// Verified says verification found source and destination equal
	// (after repairing the documents it found different; in mode "after",
	// without repair).
	Verified bool `json:"verified" bson:"verified"`
	// DocumentsRechecked counts the documents compared at commit: every
	// one in mode full, those changed since their background comparison
	// in mode continuous.
	DocumentsRechecked int64 `json:"documentsRechecked" bson:"documentsRechecked"`
	// Found is what verification found different before any repair:
	// with an exact change application it is zero.
	Found verify.Counts `json:"foundBeforeRepair" bson:"found"`
	// Repaired counts documents verification re-copied or deleted.
	Repaired int64 `json:"repaired" bson:"repaired"`
	// Namespaces verified.
	Namespaces int `json:"namespaces" bson:"namespaces"`
	// Coverage says how every namespace was compared after its last change.
	Coverage *verify.Coverage `json:"coverage,omitempty" bson:"coverage,omitempty"`
	// Background is the continuous verifier's share (mode "continuous").
	Background *verify.LiveStats `json:"background,omitempty" bson:"background,omitempty"`
	// VerificationPending: the destination is writable and the
	// after-commit comparison has not finished (mode "after").
	VerificationPending bool `json:"verificationPending,omitempty" bson:"verificationPending,omitempty"`
	// Verification has one entry per namespace verified.
	Verification []NamespaceCheck `json:"verification" bson:"verification"`
	CommittedAt  time.Time        `json:"committedAt" bson:"committedAt"`
}

// NamespaceCheck is one namespace's verification at commit: what differed
// after repair, what it found before repairing (Found) and how many
// documents it repaired.
type NamespaceCheck struct {
	Namespace string `json:"namespace" bson:"namespace"`
	Matched   int64  `json:"matched" bson:"matched"`
	Missing   int64  `json:"missing" bson:"missing"`
	Extra     int64  `json:"extra" bson:"extra"`
	Differing int64  `json:"differing" bson:"differing"`
	Rechecked int64  `json:"rechecked" bson:"rechecked"`
	// Found is nil when nothing differed before repair.
	Found    *verify.Counts `json:"foundBeforeRepair,omitempty" bson:"found,omitempty"`
	Repaired int64          `json:"repaired" bson:"repaired"`
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
// indexes, verify as the mode says (repairing what differs: FerretDB's
// oplog can miss a write after a crash), then canWrite.
func (e *Engine) runCommit(ctx context.Context) error {
	c := e.cdc
	var prev CommitReport
	if found, err := e.store.LoadState(ctx, stateKeyCommit, &prev); err != nil {
		return err
	} else if found {
		e.finishCommit(prev)
		if prev.VerificationPending {
			return e.verifyAfterCommit(ctx, prev)
		}
		return nil
	}
	requested := c.requested()
	if requested.IsZero() {
		requested = time.Now()
	}
	mode := e.verifyMode()
	if mode == VerifyContinuous && c.live == nil {
		mode = VerifyFull // not reached: Run creates it before change application
	}
	report := CommitReport{Mode: mode, EventsApplied: e.Progress().TotalEventsApplied}
	c.mu.Lock()
	report.CommitPointSeconds, report.DrainSeconds = c.commitPointTook.Seconds(), c.drainTook.Seconds()
	c.mu.Unlock()
	began := time.Now()
	if err := e.restoreUniqueIndexes(ctx); err != nil {
		return fmt.Errorf("restore unique indexes: %w", err)
	}
	report.IndexRestoreSeconds = time.Since(began).Seconds()
	if mode == VerifyAfter {
		report.VerificationPending = true
		if err := e.markWritable(ctx, &report, requested); err != nil {
			return err
		}
		return e.verifyAfterCommit(ctx, report)
	}

	e.updateProgress(func(p *migration.Progress) { p.Phase = migration.PhaseVerifying })
	vStart := time.Now()
	var rep *verify.Report
	var err error
	if mode == VerifyContinuous {
		rep, report.Coverage, err = c.live.Commit(ctx, true)
		st := c.live.Stats()
		report.Background = &st
	} else {
		rep, err = e.fullVerification(ctx, true)
		if rep != nil {
			report.Coverage = &verify.Coverage{Complete: true, Namespaces: len(rep.Namespaces)}
		}
	}
	if err != nil {
		return fmt.Errorf("verify at commit: %w", err)
	}
	report.VerificationSeconds = time.Since(vStart).Seconds()
	bad := e.addVerification(&report, rep)
	if mode == VerifyContinuous {
		report.DocumentsRechecked = report.Coverage.DocumentsRechecked
	}
	if len(bad) > 0 {
		return fmt.Errorf("verification at commit found differences that repair could not fix (%s); the destination is not marked writable: run 'livemigrate verify' for details", strings.Join(bad, "; "))
	}
	return e.markWritable(ctx, &report, requested)
}

// fullVerification compares every document of every namespace.
func (e *Engine) fullVerification(ctx context.Context, repair bool) (*verify.Report, error) {
	v, err := verify.New(verify.Options{
		Source: e.src, Destination: e.dst, Include: e.opts.Include, Exclude: e.opts.Exclude,
		Repair: repair, MetadataDB: e.opts.MetadataDB,
		// Writes to the source are stopped and the destination is drained:
		// a document that differs now will differ after any wait, so one
		// quick recheck (guarding against a read racing the last apply)
		// and then repair, instead of the live-source backoff (~16 s of
		// downtime per differing partition).
		Rechecks: 1, RecheckBackoff: 100 * time.Millisecond,
	}, e.base)
	if err != nil {
		return nil, err
	}
	return v.Run(ctx)
}

// addVerification copies rep into report and returns what still differs.
func (e *Engine) addVerification(report *CommitReport, rep *verify.Report) (bad []string) {
	report.Namespaces = len(rep.Namespaces)
	report.Repaired, report.Found = rep.Totals.Repaired, rep.Totals.Found
	report.DocumentsRechecked = rep.Totals.SourceDocuments + rep.Totals.Extra
	report.Verification = report.Verification[:0]
	for i := range rep.Namespaces {
		n := &rep.Namespaces[i]
		report.Verification = append(report.Verification, NamespaceCheck{
			Namespace: n.Namespace, Matched: n.Matched, Missing: n.Missing, Extra: n.Extra, Differing: n.Differing,
			Rechecked: n.Rechecked, Found: n.Found, Repaired: n.Repaired,
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
	return bad
}

// markWritable records the report and sets canWrite.
func (e *Engine) markWritable(ctx context.Context, report *CommitReport, requested time.Time) error {
	now := time.Now()
	report.CommittedAt = now
	report.DowntimeSeconds = now.Sub(requested).Seconds()
	if started := e.Progress().StartedAt; !started.IsZero() {
		report.DurationSeconds = now.Sub(started).Seconds()
	}
	if err := e.store.SaveState(ctx, stateKeyCommit, *report); err != nil {
		return err
	}
	e.finishCommit(*report)
	e.logger.Info("committed", "mode", string(report.Mode), "events_applied", report.EventsApplied,
		"downtime", time.Duration(report.DowntimeSeconds*float64(time.Second)).Round(time.Millisecond),
		"verified", report.Verified, "found", report.Found.Total(), "repaired", report.Repaired, "pending", report.VerificationPending)
	return nil
}

// verifyAfterCommit is mode "after": with the destination already
// writable, compare every document and report what differs, repairing
// nothing (the application may be writing to the destination).
func (e *Engine) verifyAfterCommit(ctx context.Context, report CommitReport) error {
	vStart := time.Now()
	rep, err := e.fullVerification(ctx, false)
	if err != nil {
		return fmt.Errorf("verify after commit (the destination is writable; run 'livemigrate verify' to compare again): %w", err)
	}
	report.VerificationSeconds = time.Since(vStart).Seconds()
	report.Coverage = &verify.Coverage{Complete: true, Namespaces: len(rep.Namespaces)}
	bad := e.addVerification(&report, rep)
	report.VerificationPending = false
	if err := e.store.SaveState(ctx, stateKeyCommit, report); err != nil {
		return err
	}
	e.finishCommit(report)
	if len(bad) > 0 {
		w := "verification after commit found differences (not repaired): " + strings.Join(bad, "; ")
		e.updateProgress(func(p *migration.Progress) { p.Warnings = append(p.Warnings, w) })
		e.logger.Warn("verification after commit found differences", "namespaces", len(bad))
	}
	e.logger.Info("verified after commit", "verified", report.Verified, "found", report.Found.Total(),
		"took", time.Since(vStart).Round(time.Millisecond))
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
