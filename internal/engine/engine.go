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
	logger *slog.Logger
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
		opts:   opts,
		logger: logger.With("component", "engine"),
		scope:  scope,
		prog:   migration.Progress{State: migration.StateIdle, Phase: migration.PhaseIdle},
		nsIx:   map[migration.Namespace]int{},
		cdc:    newCDC(),
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
				p.State, p.Phase, p.Error = migration.StateFailed, migration.PhaseFailed, err.Error()
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
	e.store = checkpoint.Open(e.dst, e.opts.MetadataDB, e.logger)

	// Phase 1: prepare.
	began := time.Now()
	run, colls, err := e.prepare(ctx)
	if err != nil {
		return err
	}
	// Phase 2: the start point, durable before the first document is read.
	if !run.HasStartPoint() {
		done := e.step("detect start point")
		sp, err := DetectStartPoint(ctx, e.src)
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
		e.logger.Info("start point recorded", "ts", sp.Pos.TS, "method", sp.Method)
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

// prepare binds the run to its identity, discovers the namespaces and, for a
// new run, checks (or clears) the destination.
func (e *Engine) prepare(ctx context.Context) (*checkpoint.Run, []catalog.Collection, error) {
	srcID, dstID := e.opts.SourceID, e.opts.DestinationID
	var err error
	done := e.step("fingerprint")
	if srcID == "" {
		if srcID, err = fingerprint(ctx, e.src, e.opts.Source); err != nil {
			return nil, nil, fmt.Errorf("identify the source: %w", err)
		}
	}
	if dstID == "" {
		if dstID, err = fingerprint(ctx, e.dst, e.opts.Destination); err != nil {
			return nil, nil, fmt.Errorf("identify the destination: %w", err)
		}
	}
	done()
	id := checkpoint.Identity{Source: srcID, Destination: dstID, Filters: e.scope.Fingerprint()}
	done = e.step("load checkpoint")
	run, found, err := e.store.Load(ctx)
	done()
	if err != nil {
		return nil, nil, err
	}
	if found && run.Identity != id {
		return nil, nil, &checkpoint.MismatchError{DB: e.store.Name(), Stored: run.Identity, Wanted: id}
	}
	done = e.step("list source catalog")
	colls, err := catalog.List(ctx, e.src, e.scope)
	done()
	if err != nil {
		return nil, nil, fmt.Errorf("source catalog: %w", err)
	}
	if !found {
		done = e.step("check destination")
		err := e.checkDestination(ctx, colls)
		done()
		if err != nil {
			return nil, nil, err
		}
	}
	done = e.step("record run")
	run, resumed, err := e.store.Begin(ctx, id)
	done()
	if err != nil {
		return nil, nil, err
	}
	e.logger.Info("run prepared", "resumed", resumed, "namespaces", len(colls), "source", srcID, "destination", dstID)
	return run, colls, nil
}

// checkDestination refuses a new run whose namespaces exist on the
// destination, or drops them when DropDestinationData is set.
func (e *Engine) checkDestination(ctx context.Context, colls []catalog.Collection) error {
	nss := make([]migration.Namespace, len(colls))
	for i, c := range colls {
		nss[i] = c.NS
	}
	existing, err := catalog.Exists(ctx, e.dst, nss)
	if err != nil || len(existing) == 0 {
		return err
	}
	if !e.opts.DropDestinationData {
		return fmt.Errorf("%w: %v; drop them, exclude them, or set dropDestinationData to let the engine drop exactly these", ErrDestinationNotEmpty, existing)
	}
	for _, ns := range existing {
		if err := catalog.Drop(ctx, e.dst, ns); err != nil {
			return err
		}
		e.logger.Warn("dropped destination namespace", "ns", ns.String())
	}
	return nil
}
