// Package engine is the sync engine's phase machine: it wires the catalog,
// clone and checkpoint stages (and the capture/apply stages through the hooks
// in docs/design/engine.md) into one resumable run.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// ErrDestinationNotEmpty is wrapped by the error of a new run whose
// namespaces already exist on the destination.
var ErrDestinationNotEmpty = errors.New("the destination already holds namespaces this migration would write")

// Engine runs one migration from a source to a destination.
type Engine struct {
	opts   Options
	logger *slog.Logger // component=engine
	base   *slog.Logger // the caller's: each stage it starts sets its own component
	scope  *catalog.Scope

	// Set by Run; read by the phases of this package.
	src, dst *mongo.Client
	store    *checkpoint.Store

	mu   sync.Mutex // guards prog and copyStarted
	prog migration.Progress
	nsIx map[migration.Namespace]int // index into prog.Namespaces
	// copyStarted and copyBase measure this process's copy rate.
	copyStarted time.Time
	copyBase    int64
	// estimating counts the namespaces whose estimates run alongside the
	// copy (copy.go); until it is 0 snapshots have no total.
	estimating int

	// scan is how the copy reads a namespace: Options.Copy.Scan, else the
	// source's cheaper read (mdb.ServerInfo.ScanMethod), set in prepare.
	scan mdb.ScanMethod
	// indexesFirstUpTo is the largest collection (estimated documents)
	// whose indexes are built before its documents (0: none), from
	// Options.IndexesFirstUpTo or the destination's storage, set in prepare.
	indexesFirstUpTo int64
	// countWait bounds the wait for a count that choice needs (copy.go:
	// countWait; tests on a loaded machine wait longer).
	countWait time.Duration

	// cdc is the change-application and commit state (cdc.go, commit.go).
	cdc *cdc
}

// New validates opts. It connects to nothing; Run does.
func New(opts Options, logger *slog.Logger) (*Engine, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.MetadataDB == "" {
		opts.MetadataDB = catalog.DefaultMetadataDB
	}
	if opts.RefusalPolicy == "" {
		opts.RefusalPolicy = catalog.PolicyFail
	}
	scope, err := catalog.NewScope(opts.Include, opts.Exclude, opts.MetadataDB)
	if err != nil {
		return nil, err
	}
	return &Engine{
		opts:      opts,
		logger:    logger.With("component", "engine"),
		base:      logger,
		scope:     scope,
		prog:      migration.Progress{State: migration.StateIdle, Phase: migration.PhaseIdle},
		nsIx:      map[migration.Namespace]int{},
		cdc:       newCDC(),
		countWait: countWait,
	}, nil
}

// StartPoint is where change capture starts; zero until Run recorded it.
// It is safe for concurrent use.
func (e *Engine) StartPoint() migration.Position {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.prog.StartPoint
}

// Run connects, records or resumes the run, and executes the phases in order
// (docs/design/engine.md). It returns when the run is complete, fails, or
// ctx ends; after a failure or kill, running it again with the same options
// resumes.
func (e *Engine) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil && ctx.Err() == nil {
			e.updateProgress(func(p *migration.Progress) {
				// A lag measured just before the failure may have set
				// CanCommit; a failed run offers no cutover.
				p.State, p.Phase, p.Error = migration.StateFailed, migration.PhaseFailed, err.Error()
				p.CanCommit = false
			})
		}
	}()
	e.updateProgress(func(p *migration.Progress) {
		p.State, p.Phase, p.StartedAt = migration.StateRunning, migration.PhaseStarting, time.Now()
	})
	done := e.step("connect")
	if e.src, err = mdb.Connect(ctx, "source", e.opts.Source, mdb.ConnectOptions{}); err != nil {
		return err
	}
	defer e.src.Disconnect(context.WithoutCancel(ctx))
	if e.dst, err = mdb.Connect(ctx, "destination", e.opts.Destination, mdb.ConnectOptions{}); err != nil {
		return err
	}
	defer e.dst.Disconnect(context.WithoutCancel(ctx))
	done()
	e.store = checkpoint.Open(e.dst, e.opts.MetadataDB, e.base)

	// Phase 1: prepare.
	began := time.Now()
	run, colls, srcInfo, err := e.prepare(ctx)
	if err != nil {
		return err
	}
	// Phase 2: the start point, durable before the first document is read.
	if !run.HasStartPoint() {
		done := e.step("detect start point")
		// The preflight's probe of the source is older than any read of
		// the copy, so a start point from it is early enough (docs/design/copy.md).
		sp, err := StartPointFrom(ctx, e.src, srcInfo)
		done()
		if err != nil {
			return err
		}
		done = e.step("record start point")
		err = e.store.SetStartPoint(ctx, sp.Pos, string(sp.Method))
		done()
		if err != nil {
			return err
		}
		run.StartPoint, run.StartMethod = sp.Pos, string(sp.Method)
		e.logger.Info("start point recorded", "ts", sp.Pos, "method", sp.Method)
	}
	e.logger.Info("ready to copy", "took", time.Since(began).Round(time.Millisecond))
	e.updateProgress(func(p *migration.Progress) { p.StartPoint = run.StartPoint })

	// Phases 3 and 4: copy, with each collection's indexes after its data.
	copyBegan := time.Now()
	if err := e.copyPhase(ctx, colls, run.CopyDone); err != nil {
		return err
	}
	e.logger.Info("copy phase done", "took", time.Since(copyBegan).Round(time.Millisecond))
	if !run.CopyDone {
		if err := e.store.SetCopyDone(ctx); err != nil {
			return err
		}
	}

	// Phases 5 and 6: change application (cdc.go), then the commit (commit.go).
	if e.opts.StopAfterCopy {
		e.logger.Info("copy complete; stopping before change application")
		return nil
	}
	e.updateProgress(func(p *migration.Progress) { p.Phase = migration.PhaseApplying })
	if err := e.runChangeApplication(ctx); err != nil {
		return err
	}
	e.updateProgress(func(p *migration.Progress) { p.State, p.Phase = migration.StateCommitting, migration.PhaseCommitting })
	return e.runCommit(ctx)
}

// prepare runs every start check (Preflight) before anything is written or
// dropped on the destination, then clears what the checks found stale (the
// metadata of a finished run, or with DropDestinationData another run's
// metadata and the in-scope namespaces of a new run), and records or
// resumes the run.
func (e *Engine) prepare(ctx context.Context) (*checkpoint.Run, []catalog.Collection, mdb.ServerInfo, error) {
	done := e.step("preflight")
	pf, err := Preflight(ctx, e.src, e.dst, e.opts)
	done()
	if err != nil {
		return nil, nil, mdb.ServerInfo{}, err
	}
	if err := pf.Err(); err != nil {
		return nil, nil, mdb.ServerInfo{}, err
	}
	// Nothing was written (but the identity probe's nonce, removed) up to here.
	if pf.ClearMetadata != "" {
		done = e.step("clear stale metadata")
		err := e.store.Clear(ctx)
		done()
		if err != nil {
			return nil, nil, mdb.ServerInfo{}, err
		}
		e.logger.Warn("dropped stale metadata database", "db", e.store.Name(), "reason", pf.ClearMetadata)
	}
	if pf.Resume == nil {
		done = e.step("clear destination")
		err := e.dropExisting(ctx, pf.Existing)
		done()
		if err != nil {
			return nil, nil, mdb.ServerInfo{}, err
		}
	}
	done = e.step("record run")
	run, resumed, err := e.store.Begin(ctx, pf.Identity)
	done()
	if err != nil {
		return nil, nil, mdb.ServerInfo{}, err
	}
	if e.scan = e.opts.Copy.Scan; e.scan == "" {
		e.scan = pf.Source.ScanMethod()
	}
	e.indexesFirstUpTo = max(e.opts.IndexesFirstUpTo, 0)
	if e.opts.IndexesFirstUpTo == 0 {
		// The run's document exists now: FerretDB plans a find on it.
		done = e.step("detect destination storage")
		storage, err := mdb.DetectStorage(ctx, e.dst, pf.Destination, e.store.Name(), e.store.RunCollection())
		done()
		if err != nil {
			e.logger.Warn("cannot tell the destination's storage; indexes are built after the documents", "err", err)
		}
		e.indexesFirstUpTo = storage.IndexesFirstUpTo()
		e.logger.Info("destination storage", "storage", string(storage), "indexes_first_up_to", e.indexesFirstUpTo)
	}
	e.logger.Info("run prepared", "resumed", resumed, "namespaces", len(pf.Collections),
		"source", pf.Identity.Source, "destination", pf.Identity.Destination, "source_server", pf.Source.Server())
	return run, pf.Collections, pf.Source, nil
}

// dropExisting drops the in-scope namespaces Preflight found on the
// destination of a new run; it is called only with DropDestinationData
// (Preflight refuses the run otherwise).
func (e *Engine) dropExisting(ctx context.Context, existing []migration.Namespace) error {
	if len(existing) > 0 && !e.opts.DropDestinationData {
		return fmt.Errorf("%w: %v", ErrDestinationNotEmpty, existing)
	}
	for _, ns := range existing {
		if err := catalog.Drop(ctx, e.dst, ns); err != nil {
			return err
		}
		e.logger.Warn("dropped destination namespace", "ns", ns.String())
	}
	return nil
}
