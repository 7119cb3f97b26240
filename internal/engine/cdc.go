package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/apply"
	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/verify"
)

// stateKeyApply is the checkpoint.Store state key of the change-apply
// checkpoint (docs/design/apply.md).
const stateKeyApply = "apply"

// applyState is the durable change-apply checkpoint.
type applyState struct {
	// Pos: every event at or before it is on the destination.
	Pos migration.Position `bson:"pos"`
	// Applied counts events applied over all runs.
	Applied int64 `bson:"applied"`
	// Reader is the reader that wrote it ("oplog", "change stream").
	Reader string `bson:"reader"`
	// CommitRequestedAt is set once the operator asked to commit.
	CommitRequestedAt time.Time `bson:"commitRequestedAt,omitempty"`
}

// DefaultCommitLag is the lag under which a run can commit.
const DefaultCommitLag = 5 * time.Second

// cdc is the change-application state of one engine (kept beside the
// Engine so the phase files stay separate).
type cdc struct {
	commitReq chan struct{} // closed by Commit
	pauseReq  chan bool     // true = pause, false = resume

	mu sync.Mutex // guards the fields below
	// live is the continuous verifier (nil in the other modes); it lives
	// across pauses and reader restarts of one Run. Set once, before
	// change application; the phase goroutine reads it without mu.
	live        *verify.Live
	requestedAt time.Time
	reader      string
	report      *CommitReport
	// How long this process took to take the commit point and to drain.
	commitPointTook, drainTook time.Duration
	// recheckEvery, when set (tests), is the continuous verifier's
	// RecheckEvery.
	recheckEvery time.Duration
}

func newCDC() *cdc {
	return &cdc{commitReq: make(chan struct{}), pauseReq: make(chan bool, 1)}
}

// ErrNotReady is returned by Commit before the run can commit.
var ErrNotReady = errors.New("the migration cannot commit yet: wait until the copy and index builds are done and canCommit is true")

// Commit tells a running engine that writes to the source are stopped: it
// takes the source's current position as the commit point, drains to it,
// restores relaxed indexes, verifies and sets canWrite. It returns at once;
// Run finishes the commit. Calling it again is harmless.
func (e *Engine) Commit() error {
	p := e.Progress()
	if p.State == migration.StateCommitting || p.State == migration.StateCommitted {
		return nil
	}
	if !p.CanCommit {
		return ErrNotReady
	}
	c := e.cdc
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requestedAt.IsZero() {
		c.requestedAt = time.Now()
		close(c.commitReq)
	}
	return nil
}

// Pause stops applying changes (after a checkpoint) until Resume.
func (e *Engine) Pause() error {
	if s := e.Progress().State; s != migration.StateRunning {
		return fmt.Errorf("cannot pause a migration in state %s", s)
	}
	select {
	case e.cdc.pauseReq <- true:
	default:
	}
	return nil
}

// Resume continues a paused run.
func (e *Engine) Resume() error {
	if s := e.Progress().State; s != migration.StatePaused {
		return fmt.Errorf("cannot resume a migration in state %s", s)
	}
	select {
	case e.cdc.pauseReq <- false:
	default:
	}
	return nil
}

// inScope filters events: collections by the run's scope, database-wide
// events by its database filter.
func (e *Engine) inScope(ns migration.Namespace) bool {
	if ns.Coll == "" {
		return e.scope.MatchDatabase(ns.DB)
	}
	return e.scope.Match(ns)
}

// runChangeApplication captures from the start point (or the stored
// checkpoint) and applies until the commit point is drained.
func (e *Engine) runChangeApplication(ctx context.Context) error {
	c := e.cdc
	var st applyState
	found, err := e.store.LoadState(ctx, stateKeyApply, &st)
	if err != nil {
		return err
	}
	srcCaps, err := capture.DetectCapabilities(ctx, e.src)
	if err != nil {
		return err
	}
	dstCaps, err := capture.DetectCapabilities(ctx, e.dst)
	if err != nil {
		return err
	}
	from, replay := st.Pos, time.Duration(0)
	// A checkpoint before the start point (the apply pool starts at the
	// replay window's low end) means nothing after the start point was
	// applied: resume from the start point with its replay again, so
	// entries of the replay window the oplog has trimmed since are not
	// taken for lost history.
	if !found || migration.CompareTS(st.Pos.TS, e.StartPoint().TS) < 0 {
		from = e.StartPoint()
		if srcCaps.FerretDB && !srcCaps.ChangeStreams {
			// Entries up to 2 s older than the start point may become visible
			// after it was read: the reader replays from before it (idempotent).
			replay = startReplay
		}
	}
	if !st.CommitRequestedAt.IsZero() {
		c.mu.Lock()
		if c.requestedAt.IsZero() {
			c.requestedAt = st.CommitRequestedAt
			close(c.commitReq)
		}
		c.mu.Unlock()
	}
	if e.verifyMode() == VerifyContinuous && c.live == nil {
		live, err := e.newLiveVerifier()
		if err != nil {
			return err
		}
		// Its state is durable with the apply checkpoint: resumed with it,
		// discarded when change application starts afresh.
		if found {
			err = live.Load(ctx)
		} else {
			err = live.Reset(ctx)
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.live = live
		c.mu.Unlock()
	}
	mode := apply.ModeBulk
	if dstCaps.FerretDB {
		mode = apply.ModeInIDs
	}
	for {
		reader, why, err := e.newReader(srcCaps, replay)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.reader = string(reader.Kind())
		c.mu.Unlock()
		e.logger.Info("change capture", "reader", string(reader.Kind()), "why", why, "from", from, "apply_mode", string(mode))
		start := from
		if replay > 0 {
			start = migration.Position{TS: bson.Timestamp{T: from.TS.T - min(from.TS.T, uint32(replay/time.Second))}}
		}
		pool := apply.New(e.dst, apply.Options{Source: e.src, Start: start, Replayed: capture.HistoryFloor(from, replay), Mode: mode,
			CreateIndex: e.createRelaxedIndex}, e.base)
		paused, err := e.applyUntil(ctx, reader, pool, from, st.Applied)
		cp := pool.Checkpoint()
		st = applyState{Pos: cp, Applied: st.Applied + pool.Applied(), Reader: string(reader.Kind()), CommitRequestedAt: c.requested()}
		// A final checkpoint, also after Ctrl-C.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		serr := e.saveApply(sctx, st)
		cancel()
		if err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		from, replay = cp, 0
		if !paused {
			return nil
		}
		e.updateProgress(func(p *migration.Progress) { p.State = migration.StatePaused })
		e.logger.Info("paused", "checkpoint", cp)
		if err := c.waitResume(ctx); err != nil {
			return err
		}
		e.updateProgress(func(p *migration.Progress) { p.State = migration.StateRunning })
	}
}

func (c *cdc) requested() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requestedAt
}

func (c *cdc) waitResume(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-c.pauseReq:
			if !p {
				return nil
			}
		}
	}
}

// catalogEvery is how often FerretDB's catalog is compared to notice DDL
// (its oplog logs none); each comparison lists the databases, which
// FerretDB answers by measuring every database's size.
const catalogEvery = 3 * time.Second

// startReplay is how far before the copy's start point FerretDB's oplog is
// replayed: entries become visible up to ~1 s out of order (substrate.md).
const startReplay = 3 * time.Second

// newReader picks the reader for the source (capture.ReaderFor). On FerretDB
// the catalog comparison starts from the destination's catalog, so DDL made
// while the engine was stopped is still noticed.
func (e *Engine) newReader(caps capture.Capabilities, replay time.Duration) (capture.Reader, string, error) {
	return capture.ReaderFor(e.src, caps, capture.DetectOptions{
		Filter: e.inScope, Replay: replay, CatalogEvery: catalogEvery,
		Baseline: func(ctx context.Context) (capture.Catalog, error) { return capture.ReadCatalog(ctx, e.dst, e.inScope) },
	}, e.base)
}

// createRelaxedIndex builds an index created on the source during sync,
// relaxed like the copy's (unique restored at commit).
func (e *Engine) createRelaxedIndex(ctx context.Context, ns migration.Namespace, spec bson.Raw) error {
	name, _ := spec.Lookup("name").StringValueOK()
	ix := catalog.Index{Name: name, Spec: spec}
	if ix.Unique() {
		if err := e.store.AddRelaxed(ctx, checkpoint.RelaxedIndex{NS: ns, Name: name, Spec: spec}); err != nil {
			return err
		}
	}
	ref, err := catalog.CreateIndex(ctx, e.dst, ns, name, ix.Relaxed())
	if err != nil {
		return err
	}
	if ref != nil {
		e.logger.Warn("index refused by the destination", "ns", ns.String(), "index", name, "reason", ref.Reason)
		e.updateProgress(func(p *migration.Progress) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("index %s on %s refused by the destination: %s", name, ns, ref.Reason))
		})
	}
	return nil
}

// applyUntil runs reader → pool until the commit point is drained (nil),
// a pause is requested (paused), or an error.
func (e *Engine) applyUntil(ctx context.Context, reader capture.Reader, pool *apply.Pool, from migration.Position, base int64) (paused bool, err error) {
	c := e.cdc
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	events := make(chan migration.Event, 4096)
	g.Go(func() error { return reader.Run(gctx, from, events) })
	toPool := events
	if c.live != nil {
		// Every event is observed before it is applied: the continuous
		// verifier's record of what changed since it compared.
		observed := make(chan migration.Event, 4096)
		toPool = observed
		g.Go(func() error { return observe(gctx, c.live, events, observed) })
		g.Go(func() error { return c.live.Run(gctx, pool.Checkpoint) })
	}
	g.Go(func() error { return pool.Run(gctx, toPool) })

	var done bool
	g.Go(func() error {
		tick := time.NewTicker(lagEvery(reader))
		defer tick.Stop()
		var commitPoint migration.Position
		var drainFrom time.Time
		committing := false
		// While committing, the drain is checked often: it is downtime.
		var drain <-chan time.Time
		lastSave := time.Now()
		var meter lagMeter
		commitReq := c.commitReq // closed by Commit; nil once taken, so it stops firing
		for {
			select {
			case <-gctx.Done():
				return gctx.Err()
			case <-commitReq:
				commitReq = nil
				if !committing {
					if c.live != nil {
						c.live.Hold() // the drain is downtime: nothing competes with it
					}
					t0 := time.Now()
					p, err := reader.CommitPoint(gctx)
					if err != nil {
						return fmt.Errorf("read the commit point: %w", err)
					}
					commitPoint, committing, drainFrom = p, true, time.Now()
					c.mu.Lock()
					c.commitPointTook = drainFrom.Sub(t0)
					c.mu.Unlock()
					dt := time.NewTicker(20 * time.Millisecond)
					defer dt.Stop()
					drain = dt.C
					e.logger.Info("commit point taken", "ts", p)
					e.updateProgress(func(p *migration.Progress) {
						p.State, p.Phase = migration.StateCommitting, migration.PhaseCommitting
					})
					st := applyState{Pos: pool.Checkpoint(), Applied: base + pool.Applied(), Reader: string(reader.Kind()), CommitRequestedAt: c.requested()}
					if err := e.saveApply(gctx, st); err != nil {
						return err
					}
				}
			case p := <-c.pauseReq:
				if p && !committing {
					paused = true
					stop()
					return nil
				}
			case <-tick.C:
			case <-drain:
				if pool.Checkpoint().Before(commitPoint) {
					continue
				}
			}
			cp := pool.Checkpoint()
			if committing && !cp.Before(commitPoint) {
				c.mu.Lock()
				c.drainTook = time.Since(drainFrom)
				c.mu.Unlock()
				done = true
				stop()
				return nil
			}
			lagD, err := measureLag(gctx, reader, &meter, cp)
			if err != nil {
				return err
			}
			lag := lagSeconds(lagD)
			e.updateProgress(func(p *migration.Progress) {
				p.LagTimeSeconds = lag
				p.TotalEventsApplied = base + pool.Applied()
				p.CanCommit = canCommitAt(lagD) || committing
			})
			if time.Since(lastSave) >= time.Second {
				st := applyState{Pos: cp, Applied: base + pool.Applied(), Reader: string(reader.Kind()), CommitRequestedAt: c.requested()}
				if err := e.saveApply(gctx, st); err != nil {
					return err
				}
				lastSave = time.Now()
			}
		}
	})
	err = g.Wait()
	e.updateProgress(func(p *migration.Progress) { p.TotalEventsApplied = base + pool.Applied() })
	if done || paused {
		return paused, nil
	}
	if err == nil {
		err = errors.New("change capture stopped unexpectedly")
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return false, err
}

// observe hands every event from in to the continuous verifier, then to
// out; it closes out when in is closed.
func observe(ctx context.Context, live *verify.Live, in <-chan migration.Event, out chan<- migration.Event) error {
	defer close(out)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-in:
			if !ok {
				return nil
			}
			live.Observe(ev)
			select {
			case out <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (e *Engine) verifyMode() VerifyMode {
	if e.opts.Verification == "" {
		return VerifyContinuous
	}
	return e.opts.Verification
}

// newLiveVerifier returns the continuous verifier, throttled so that it
// never holds the lag above the commit threshold.
func (e *Engine) newLiveVerifier() (*verify.Live, error) {
	return verify.NewLive(verify.LiveOptions{
		Options: verify.Options{Source: e.src, Destination: e.dst, Include: e.opts.Include, Exclude: e.opts.Exclude, MetadataDB: e.opts.MetadataDB},
		// snapshot, not Progress: Progress reads this verifier.
		Lag: func() time.Duration { return time.Duration(e.snapshot().LagTimeSeconds) * time.Second },
		// Slower from 2 s of lag, stopped 1 s before the commit threshold:
		// the lag it adds never takes canCommit away.
		SlowLag: 2 * time.Second, PauseLag: DefaultCommitLag - time.Second,
		RecheckEvery: e.cdc.recheckEvery,
	}, e.base)
}

// BackgroundVerification returns the continuous verifier's share so far;
// false before change application and in the other modes.
func (e *Engine) BackgroundVerification() (verify.LiveStats, bool) {
	e.cdc.mu.Lock()
	live := e.cdc.live
	e.cdc.mu.Unlock()
	if live == nil {
		return verify.LiveStats{}, false
	}
	return live.Stats(), true
}

// saveApply saves the apply checkpoint st, whose position was read
// before: first the continuous verifier's record of changed documents
// (which covers every event observed, so every event at or before st.Pos),
// then the checkpoint.
func (e *Engine) saveApply(ctx context.Context, st applyState) error {
	if e.cdc.live != nil {
		if err := e.cdc.live.Save(ctx); err != nil {
			return err
		}
	}
	return e.store.SaveState(ctx, stateKeyApply, st)
}
