package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// syncEngine is what the agent needs of the sync engine.
type syncEngine interface {
	Run(ctx context.Context) error
	Progress() migration.Progress
}

// committer is implemented by an engine that can commit (drain to the
// source's current position, restore indexes, verify, mark writable).
// Commit returns at once (an error while the run is not ready); Run ends
// when the commit is done.
type committer interface {
	Commit() error
	CommitReport() *engine.CommitReport
}

// run is one migration this agent runs.
type run struct {
	id     string
	spec   api.MigrationSpec
	logger *slog.Logger

	cutoverOnce sync.Once
	cutover     chan struct{} // closed when the operator confirmed the cutover
	cancel      context.CancelFunc

	mu        sync.Mutex // guards cutoverAt
	cutoverAt time.Time
}

func (r *run) requestCutover() {
	r.cutoverOnce.Do(func() {
		r.mu.Lock()
		r.cutoverAt = time.Now()
		r.mu.Unlock()
		r.logger.Info("cutover requested")
		close(r.cutover)
	})
}

func (r *run) stop() { r.cancel() }

// startRun starts migration id unless it already runs here.
func (a *Agent) startRun(ctx context.Context, id string, spec api.MigrationSpec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.runs[id]; ok {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &run{id: id, spec: spec, logger: a.logger.With("migration_id", id), cutover: make(chan struct{}), cancel: cancel}
	a.runs[id] = r
	a.wg.Go(func() {
		defer cancel()
		a.migrate(rctx, r)
		a.mu.Lock()
		delete(a.runs, id)
		a.mu.Unlock()
	})
}

// engineOptions builds the engine's options from the migration spec.
func (a *Agent) engineOptions(spec api.MigrationSpec) (engine.Options, error) {
	src, ok := a.sources[spec.Request.Source.ClusterName]
	if !ok {
		return engine.Options{}, fmt.Errorf("migration host %s is not configured for source %q", a.opts.Hostname, spec.Request.Source.ClusterName)
	}
	srcURI, err := src.connectionFor(spec.Request.Source)
	if err != nil {
		return engine.Options{}, err
	}
	dstURI, err := destinationURI(spec.Destination)
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{Source: srcURI, Destination: dstURI, DropDestinationData: spec.Request.DropDestinationData,
		Verification: engine.VerifyMode(spec.Request.VerificationMode)}, nil
}

// migrate runs the engine for r until it is committed and reported, fails,
// or is stopped. Transient failures restart the engine, which resumes from
// its checkpoint.
func (a *Agent) migrate(ctx context.Context, r *run) {
	r.logger.Info("migration started", "source", r.spec.Request.Source.ClusterName, "destination", r.spec.Destination.Name)
	opts, err := a.engineOptions(r.spec)
	if err != nil {
		a.fail(ctx, r, err)
		return
	}
	opts.MigrationID = r.id
	const maxRestarts = 20
	for attempt := 0; ; attempt++ {
		eng, err := engine.New(opts, a.opts.Logger.With("migration_id", r.id))
		if err != nil {
			a.fail(ctx, r, err)
			return
		}
		err = a.drive(ctx, r, eng)
		switch {
		case err == nil || ctx.Err() != nil:
			return
		case attempt < maxRestarts && mdb.IsTransient(err):
			r.logger.Warn("engine stopped on a transient error; resuming", "err", err, "attempt", attempt+1)
			if sleep(ctx, 2*time.Second) != nil {
				return
			}
		default:
			a.fail(ctx, r, err)
			return
		}
	}
}

// drive runs one engine instance: it posts progress, commits on cutover and
// reports at the end. It returns the engine's error, or nil when the
// migration was reported or stopped.
func (a *Agent) drive(ctx context.Context, r *run, eng syncEngine) error {
	ectx, stopEngine := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- eng.Run(ectx) }()
	defer func() {
		stopEngine()
		if runErr != nil {
			_ = <-runErr // the engine stops because we cancel it; its error was reported
		}
	}()

	a.mu.Lock()
	every := a.interval(a.reg.ProgressIntervalSeconds, 2*time.Second)
	a.mu.Unlock()
	if a.opts.ProgressInterval > 0 {
		every = a.opts.ProgressInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	commitReq := r.cutover
	var commitRetry <-chan time.Time
	closed := make(chan struct{})
	close(closed)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-runErr:
			runErr = nil
			if err != nil {
				return err
			}
			if p := eng.Progress(); !p.CanWrite {
				return fmt.Errorf("the engine stopped in phase %q before the commit", p.Phase)
			}
			return a.finish(ctx, r, eng)
		case <-commitReq:
			commitReq = nil
			c, ok := eng.(committer)
			if !ok {
				return errors.New("this engine cannot commit")
			}
			if err := c.Commit(); err != nil {
				r.logger.Warn("commit not accepted yet; retrying", "err", err)
				commitRetry = time.After(time.Second)
			}
		case <-commitRetry:
			commitRetry = nil
			commitReq = closed
		case <-tick.C:
			if stop := a.postProgress(ctx, r, eng.Progress()); stop {
				r.logger.Info("control plane stopped the migration")
				return nil
			}
		}
	}
}

// postProgress sends p and acts on the directive. It returns true when the
// control plane wants the migration stopped.
func (a *Agent) postProgress(ctx context.Context, r *run, p migration.Progress) bool {
	ack, err := a.client().PostProgress(ctx, r.id, toAPIProgress(p))
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		if client.IsNotFound(err) {
			r.logger.Warn("the control plane does not know this migration any more; stopping", "err", err)
			return true
		}
		if client.IsUnauthorized(err) {
			_ = a.reauth(ctx, a.client(), err)
			return false
		}
		r.logger.Warn("post progress failed", "err", err)
		return false
	}
	switch ack.Directive {
	case api.DirectiveCutover:
		r.requestCutover()
	case api.DirectiveStop:
		return true
	}
	return false
}

// fail reports the migration as FAILED with err.
func (a *Agent) fail(ctx context.Context, r *run, err error) {
	r.logger.Error("migration failed", "err", err)
	p := api.Progress{State: api.StateFailed, Phase: string(migration.PhaseFailed), Error: err.Error()}
	_ = a.retryCall(ctx, "report migration failure", func(ctx context.Context, cl *client.Client) error {
		_, err := cl.PostProgress(ctx, r.id, p)
		return err
	})
}

// finish builds the report of a committed run and posts it.
func (a *Agent) finish(ctx context.Context, r *run, eng syncEngine) error {
	p := eng.Progress()
	r.mu.Lock()
	cutoverAt := r.cutoverAt
	r.mu.Unlock()
	// Post the final progress (canWrite) first, so the control plane shows it.
	a.postProgress(ctx, r, p)
	opts, err := a.engineOptions(r.spec)
	if err != nil {
		return err
	}
	rep := api.Report{
		ChangesSynced:     p.TotalEventsApplied,
		BytesCopied:       p.CollectionCopy.EstimatedCopiedBytes,
		CollectionsCopied: p.CollectionCopy.CollectionsCopied,
		Verification:      api.Verification{Status: api.VerificationSkipped, Message: "the engine reported no verification", Namespaces: []api.NamespaceVerification{}},
	}
	committedAt := time.Now()
	if c, ok := eng.(committer); ok {
		if cr := c.CommitReport(); cr != nil {
			rep.ChangesSynced = cr.EventsApplied
			rep.DowntimeSeconds = cr.DowntimeSeconds
			rep.Downtime = commitDowntime(cr)
			rep.Verification = commitVerification(cr)
			if !cr.CommittedAt.IsZero() {
				committedAt = cr.CommittedAt
			}
		}
	}
	// The agent saw the operator's confirmation before the engine did.
	if !cutoverAt.IsZero() {
		rep.DowntimeSeconds = max(rep.DowntimeSeconds, committedAt.Sub(cutoverAt).Seconds())
	}
	started := runCreatedAt(ctx, opts)
	if started.IsZero() {
		started = p.StartedAt
	}
	if !started.IsZero() {
		rep.DurationSeconds = committedAt.Sub(started).Seconds()
	}
	err = a.retryCall(ctx, "post migration report", func(ctx context.Context, cl *client.Client) error {
		return cl.PostReport(ctx, r.id, rep)
	})
	if err != nil {
		return errors.Join(errors.New("post migration report"), err)
	}
	r.logger.Info("migration complete", "changes_synced", rep.ChangesSynced, "downtime_seconds", rep.DowntimeSeconds, "verification", rep.Verification.Status)
	return nil
}

// runCreatedAt reads when the engine's run began from its metadata on the
// destination (zero when unknown), so the duration spans agent restarts.
func runCreatedAt(ctx context.Context, opts engine.Options) time.Time {
	c, err := mdb.Connect(ctx, "destination", opts.Destination, mdb.ConnectOptions{Timeout: 5 * time.Second})
	if err != nil {
		return time.Time{}
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	var doc struct {
		CreatedAt time.Time `bson:"createdAt"`
	}
	db := opts.MetadataDB
	if db == "" {
		db = catalog.DefaultMetadataDB
	}
	if err := c.Database(db).Collection("run").FindOne(ctx, bson.D{{Key: "_id", Value: "run"}}).Decode(&doc); err != nil {
		return time.Time{}
	}
	return doc.CreatedAt
}

// toAPIProgress maps the engine's progress to the agent protocol's.
func toAPIProgress(p migration.Progress) api.Progress {
	cc := p.CollectionCopy
	out := api.Progress{
		Phase:                   string(p.Phase),
		State:                   api.EngineState(p.State),
		LagTimeSeconds:          p.LagTimeSeconds,
		CanCommit:               p.CanCommit,
		CanWrite:                p.CanWrite,
		TotalEventsApplied:      p.TotalEventsApplied,
		EstimatedTotalBytes:     cc.EstimatedTotalBytes,
		EstimatedCopiedBytes:    cc.EstimatedCopiedBytes,
		EstimatedTotalDocuments: cc.EstimatedTotalDocuments,
		CopiedDocuments:         cc.CopiedDocuments,
		Warnings:                p.Warnings,
		Error:                   p.Error,
	}
	if out.State == "" {
		out.State = api.StateIdle
	}
	for _, n := range p.Namespaces {
		out.Namespaces = append(out.Namespaces, api.NamespaceProgress{
			Namespace: n.NS.String(), Phase: string(n.State),
			EstimatedBytes: n.EstimatedBytes, CopiedBytes: n.CopiedBytes,
			EstimatedDocuments: n.EstimatedDocuments, CopiedDocuments: n.CopiedDocuments,
		})
	}
	if b := p.Background; b != nil {
		out.BackgroundVerification = &api.BackgroundVerification{
			NamespacesVerified: b.NamespacesVerified, Namespaces: b.Namespaces,
			DocumentsCompared: b.DocumentsCompared, Passes: b.Passes, PassesInvalidated: b.PassesInvalidated,
			DocumentsRechecked: b.DocumentsRechecked, DocumentsToRecheck: b.DocumentsToRecheck,
			Pauses: b.Pauses, PausedSeconds: b.PausedSeconds, SlowedSeconds: b.SlowedSeconds, LastError: b.LastError,
		}
	}
	out.Info = infoLine(p)
	return out
}

// infoLine is a one-line human summary of p.
func infoLine(p migration.Progress) string {
	cc := p.CollectionCopy
	switch p.Phase {
	case migration.PhaseCopying, migration.PhaseIndexing:
		pct := 0.0
		if cc.EstimatedTotalBytes > 0 {
			pct = 100 * float64(cc.EstimatedCopiedBytes) / float64(cc.EstimatedTotalBytes)
		}
		return fmt.Sprintf("copying: %d of ~%d documents, %s of ~%s (%.0f%%), %d of %d collections",
			cc.CopiedDocuments, cc.EstimatedTotalDocuments, migration.FormatBytes(cc.EstimatedCopiedBytes), migration.FormatBytes(cc.EstimatedTotalBytes), min(pct, 100), cc.CollectionsCopied, cc.CollectionsTotal)
	case migration.PhaseApplying:
		ready := "not yet ready for cutover"
		if p.CanCommit {
			ready = "ready for cutover"
		}
		line := fmt.Sprintf("applying changes: %d applied, lag %d s, %s", p.TotalEventsApplied, p.LagTimeSeconds, ready)
		if b := p.Background; b != nil {
			line += fmt.Sprintf(", verified in background: %d/%d namespaces", b.NamespacesVerified, b.Namespaces)
		}
		return line
	case migration.PhaseFailed:
		return "failed: " + p.Error
	}
	return string(p.Phase)
}
