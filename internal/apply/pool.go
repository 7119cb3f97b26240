// Package apply writes normalized change events to the destination.
//
// A Pool routes each data event by a hash of (namespace, _id) to one of a
// fixed set of workers, so one document's changes stay in order; workers
// write in batches; DDL events are barriers. Every write is idempotent, so
// replaying any suffix of events after a crash converges to the same state.
// The checkpoint is the newest position every worker has written. See
// docs/design/apply.md.
package apply

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Mode is how a worker writes a batch.
type Mode string

// Write modes.
const (
	// ModeInIDs deletes the batch's documents with one {_id: {$in: …}} and
	// inserts their final images with one unordered insertMany: two
	// round trips per batch, for destinations where every per-_id operation
	// is a scan (FerretDB).
	ModeInIDs Mode = "in"
	// ModeBulk sends one unordered bulk write of per-document upserting
	// replaces and deletes (MongoDB, where _id lookups use the index).
	ModeBulk Mode = "bulk"
)

// Options configures a Pool.
type Options struct {
	// Workers is the number of ordered lanes (default 4; 1 in ModeInIDs).
	Workers int
	// BatchSize caps the events one worker writes at once (default 512;
	// 4096 in ModeInIDs).
	BatchSize int
	// BatchBytes caps the document bytes (images and update descriptions)
	// of the events one worker writes at once (default 16 MiB; a single
	// event larger than that is a batch of its own).
	BatchBytes int
	// Mode is how batches are written (default ModeInIDs).
	Mode Mode
	// Source, when set, is read for a document's current state when an
	// update cannot be applied safely (missing base document, path that
	// does not fit). Without it such an update is an error.
	Source *mongo.Client
	// Start is the position the events begin after; Checkpoint returns it
	// until something newer is written.
	Start migration.Position
	// Replayed is the last position whose events may be replays of changes
	// the destination already holds (the reader's replay window before its
	// resume point). The history check does not protect them: the source
	// may drop them from its oplog without that being an error. ModeInIDs
	// therefore writes such a document only when the destination's differs
	// from its final image, so a crash between deleting a batch's documents
	// and inserting them again cannot leave one missing that no replay can
	// restore. Zero: no event is a replay.
	Replayed migration.Position
	// CreateIndex builds one index from a createIndexes event (the engine
	// relaxes unique indexes and records them). Default: build it as given.
	CreateIndex func(ctx context.Context, ns migration.Namespace, spec bson.Raw) error
	// TickEvery is how often idle workers are told the newest dispatched
	// position, so the checkpoint moves when some lanes get no events
	// (default 100ms).
	TickEvery time.Duration
	// Retry bounds retries of transient write errors (default mdb.DefaultRetry).
	Retry mdb.RetryPolicy
	// AttemptTimeout bounds one write round trip (default 60s).
	AttemptTimeout time.Duration
}

// Pool applies events to the destination.
type Pool struct {
	dst    *mongo.Client
	opts   Options
	logger *slog.Logger

	applied atomic.Int64 // events written (data and DDL)
	mu      sync.Mutex   // guards written
	written []migration.Position
}

// New returns a pool writing to dst.
func New(dst *mongo.Client, opts Options, logger *slog.Logger) *Pool {
	if opts.Mode == "" {
		opts.Mode = ModeInIDs
	}
	// In ModeInIDs every batch costs a scan of each namespace it touches,
	// whatever its size, and the scans of parallel lanes serialize on the
	// destination's writer: one lane with big batches does a quarter of the
	// scans of four lanes for the same events.
	if opts.Workers <= 0 {
		opts.Workers = 4
		if opts.Mode == ModeInIDs {
			opts.Workers = 1
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
		if opts.Mode == ModeInIDs {
			opts.BatchSize = 4096
		}
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 16 << 20
	}
	if opts.TickEvery == 0 {
		opts.TickEvery = 100 * time.Millisecond
	}
	if opts.Retry == (mdb.RetryPolicy{}) {
		opts.Retry = mdb.DefaultRetry
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = 60 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{dst: dst, opts: opts, logger: logger.With("component", "apply"), written: make([]migration.Position, opts.Workers)}
	for i := range p.written {
		p.written[i] = opts.Start
	}
	return p
}

// Checkpoint returns the newest position every worker has written: every
// event at or before it is on the destination. Safe for concurrent use.
func (p *Pool) Checkpoint() migration.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	lowest := p.written[0]
	for _, w := range p.written[1:] {
		if w.Before(lowest) {
			lowest = w
		}
	}
	return lowest
}

// Applied returns how many events have been written. Safe for concurrent use.
func (p *Pool) Applied() int64 { return p.applied.Load() }

func (p *Pool) setWritten(w int, pos migration.Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.written[w].Before(pos) || (!pos.Before(p.written[w]) && len(pos.ResumeToken) > 0) {
		p.written[w] = pos
	}
}

// item is what the dispatcher hands a worker.
type item struct {
	ev      migration.Event
	tick    bool          // position only: the worker has nothing older pending
	barrier chan struct{} // flush, then close it
}

// Run applies events from in until in is closed (everything written, nil)
// or an error occurs (ctx ended or a write failed for good). Run must not
// be called concurrently on one Pool.
func (p *Pool) Run(ctx context.Context, in <-chan migration.Event) error {
	g, ctx := errgroup.WithContext(ctx)
	lanes := make([]chan item, p.opts.Workers)
	for i := range lanes {
		lanes[i] = make(chan item, 2*p.opts.BatchSize)
		w := &worker{pool: p, id: i, in: lanes[i]}
		g.Go(func() error { return w.run(ctx) })
	}
	g.Go(func() error {
		defer func() {
			for _, l := range lanes {
				close(l)
			}
		}()
		return p.dispatch(ctx, in, lanes)
	})
	return g.Wait()
}

func (p *Pool) dispatch(ctx context.Context, in <-chan migration.Event, lanes []chan item) error {
	put := func(l chan item, it item) error {
		select {
		case l <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	broadcast := func(it item) error {
		for _, l := range lanes {
			if err := put(l, it); err != nil {
				return err
			}
		}
		return nil
	}
	var last migration.Position
	dirty := false
	ticker := time.NewTicker(p.opts.TickEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			if dirty {
				if err := broadcast(item{ev: migration.Event{Op: migration.OpNoop, Pos: last}, tick: true}); err != nil {
					return err
				}
				dirty = false
			}
		case ev, ok := <-in:
			if !ok {
				if dirty {
					return broadcast(item{ev: migration.Event{Op: migration.OpNoop, Pos: last}, tick: true})
				}
				return nil
			}
			if last.Before(ev.Pos) || len(ev.Pos.ResumeToken) > 0 {
				last = ev.Pos
			}
			dirty = true
			switch {
			case ev.Op == migration.OpNoop:
				// the next tick carries it
			case ev.Op.IsDDL():
				if err := p.barrier(ctx, lanes, put); err != nil {
					return err
				}
				if err := p.applyDDL(ctx, ev); err != nil {
					return err
				}
				p.applied.Add(1)
				for w := range lanes {
					p.setWritten(w, last)
				}
				dirty = false
			default:
				if err := put(lanes[p.lane(ev)], item{ev: ev}); err != nil {
					return err
				}
			}
		}
	}
}

// barrier waits until every worker has written everything sent before it.
func (p *Pool) barrier(ctx context.Context, lanes []chan item, put func(chan item, item) error) error {
	acks := make([]chan struct{}, len(lanes))
	for i, l := range lanes {
		acks[i] = make(chan struct{})
		if err := put(l, item{barrier: acks[i]}); err != nil {
			return err
		}
	}
	for _, a := range acks {
		select {
		case <-a:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// lane picks the worker for a data event: hash of namespace and _id.
func (p *Pool) lane(ev migration.Event) int {
	h := fnv.New64a()
	h.Write([]byte(ev.NS.String()))
	if id, err := ev.DocumentKey.LookupErr("_id"); err == nil {
		h.Write([]byte{byte(id.Type)})
		h.Write(id.Value)
	}
	return int(h.Sum64() % uint64(p.opts.Workers))
}

type worker struct {
	pool *Pool
	id   int
	in   chan item
}

func (w *worker) run(ctx context.Context) error {
	batch := make([]migration.Event, 0, w.pool.opts.BatchSize)
	bytes := 0                 // document bytes in batch
	var pos migration.Position // newest position in batch (events and ticks)
	hasPos := false
	flush := func() error {
		if len(batch) > 0 {
			if err := w.pool.write(ctx, batch); err != nil {
				return err
			}
			w.pool.applied.Add(int64(len(batch)))
			batch, bytes = batch[:0], 0
		}
		if hasPos {
			w.pool.setWritten(w.id, pos)
			hasPos = false
		}
		return nil
	}
	add := func(it item) (barrier chan struct{}) {
		switch {
		case it.barrier != nil:
			return it.barrier
		case !it.tick:
			batch = append(batch, it.ev)
			bytes += eventBytes(it.ev)
		}
		pos, hasPos = it.ev.Pos, true
		return nil
	}
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-w.in:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return flush()
		}
		if b := add(it); b != nil {
			if err := flush(); err != nil {
				return err
			}
			close(b)
			continue
		}
		// Take whatever else is queued, up to a batch.
	drain:
		for len(batch) < w.pool.opts.BatchSize && bytes < w.pool.opts.BatchBytes {
			select {
			case it, ok = <-w.in:
				if !ok {
					return flush()
				}
				if b := add(it); b != nil {
					if err := flush(); err != nil {
						return err
					}
					close(b)
					break drain
				}
			default:
				break drain
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// eventBytes is what an event adds to a batch's documents.
func eventBytes(ev migration.Event) int {
	n := len(ev.FullDocument) + len(ev.DocumentKey)
	if ev.Update != nil {
		n += len(ev.Update.UpdatedFields)
	}
	return n
}

func (p *Pool) retry(ctx context.Context, what string, op func(context.Context) error) error {
	return mdb.RetryEach(ctx, p.logger, what, p.opts.Retry, p.opts.AttemptTimeout, func(ctx context.Context) error {
		if err := op(ctx); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}
