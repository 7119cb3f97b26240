package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// OplogOptions configures an OplogReader. Detect fills them for the source
// at hand; the zero value suits MongoDB.
type OplogOptions struct {
	// Filter selects the namespaces in scope (default InScope("")).
	Filter Filter
	// FullImageUpdates treats a $v:1 update whose $set carries the
	// document's _id as the whole post-image (FerretDB).
	FullImageUpdates bool
	// CatalogDDL notices DDL by comparing the catalog every CatalogEvery,
	// for oplogs that log none (FerretDB).
	CatalogDDL bool
	// Settle, when > 0, enables the recipe for oplogs whose entries become
	// visible out of timestamp order (FerretDB): poll from the released
	// boundary minus Window without a sort and drop entries already seen.
	// With FullImageUpdates every entry carries its document's whole state,
	// so entries are sent as soon as they are seen, each document keeping
	// its newest: an entry that shows up late is dropped when a newer one
	// for its document (or a later drop of its collection) was already sent,
	// and Run replays Window before its from position, since a checkpoint
	// may be newer than entries not yet visible. Otherwise an entry is
	// released only once Settle has passed since a poll saw an entry at
	// least as new.
	Settle time.Duration
	// Window is how far behind the released boundary each poll starts when
	// Settle > 0 (default 2s).
	Window time.Duration
	// Poll is the pause between polls that found little (default 200ms).
	Poll time.Duration
	// CatalogEvery is how often the catalog is compared (default 1s).
	CatalogEvery time.Duration
	// Baseline returns the catalog DDL detection starts from (default: the
	// source's catalog when Run starts). The engine passes the
	// destination's, so DDL made while it was stopped is not missed.
	Baseline func(context.Context) (Catalog, error)
	// Replay, when > 0, makes Run also send entries up to Replay older than
	// its from position (idempotent replays), for a from that is a copy's
	// start point: entries older than it may become visible after it was
	// taken. Lost history is judged against from itself, so an oplog trimmed
	// to just before from is not mistaken for lost changes.
	Replay time.Duration
	// Retry bounds retries of transient errors (default mdb.DefaultRetry).
	Retry mdb.RetryPolicy
	// AttemptTimeout bounds one query (default 30s).
	AttemptTimeout time.Duration
}

// OplogReader reads local.oplog.rs by polling (no tailable cursors: they
// lose and duplicate entries on FerretDB).
type OplogReader struct {
	client *mongo.Client
	opts   OplogOptions
	logger *slog.Logger

	mu      sync.Mutex // guards the fields below
	running bool
	newest  bson.Timestamp // newest entry seen by Run
	started uint64         // polls started
	done    uint64         // polls finished
	pollCh  chan struct{}  // closed when a poll finishes
	// forceCatalog makes the next poll compare the catalog, so DDL made
	// before a Latest call is at or before the position it returns.
	forceCatalog bool
	// commitPoll makes the next poll serve CommitPoint; commitTS is the
	// position it gave (eager release: see CommitPoint).
	commitPoll bool
	commitTS   bson.Timestamp
}

// NewOplogReader returns a reader of c's oplog.
func NewOplogReader(c *mongo.Client, opts OplogOptions, logger *slog.Logger) *OplogReader {
	if opts.Filter == nil {
		opts.Filter = InScope("")
	}
	if opts.Window == 0 {
		opts.Window = 2 * time.Second
	}
	if opts.Poll == 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.CatalogEvery == 0 {
		opts.CatalogEvery = time.Second
	}
	if opts.Retry == (mdb.RetryPolicy{}) {
		opts.Retry = mdb.DefaultRetry
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = 30 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &OplogReader{client: c, opts: opts, logger: logger.With("component", "capture", "reader", "oplog"),
		pollCh: make(chan struct{})}
}

// Kind implements Reader.
func (r *OplogReader) Kind() Kind { return KindOplog }

// ResumeReplay is how far before its from position Run sends entries again:
// with out-of-order visibility and eager release, a checkpoint may be newer
// than entries that were not visible yet when it was taken.
func (r *OplogReader) ResumeReplay() time.Duration {
	if r.opts.Settle > 0 && r.opts.FullImageUpdates {
		return r.opts.Window
	}
	return 0
}

func (r *OplogReader) oplog() *mongo.Collection {
	return r.client.Database("local").Collection("oplog.rs")
}

// Latest implements Reader. While Run is running it waits for the next
// poll to finish and returns the newest entry it saw (no extra scan).
func (r *OplogReader) Latest(ctx context.Context) (migration.Position, error) {
	return r.latest(ctx, false)
}

// CommitPoint is Latest, but the poll it waits for also compares the
// catalog (CatalogDDL), so DDL made before the call is at or before the
// position. Latest leaves the catalog to its CatalogEvery schedule: on
// FerretDB a catalog read lists the databases, which measures every
// database's size (up to a second with some data), too dear for the lag
// readings the engine takes every second.
//
// With eager release the poll may send entries older than positions
// already applied (they became visible late), and an applier's checkpoint
// may have passed their position before they arrive. So the position
// returned is one tick after the newest entry, and that poll ends with a
// no-op at it: a checkpoint reaches it only once everything the poll sent
// is applied.
func (r *OplogReader) CommitPoint(ctx context.Context) (migration.Position, error) {
	return r.latest(ctx, true)
}

// after returns the position one counter tick after ts.
func after(ts bson.Timestamp) bson.Timestamp {
	if ts.I == math.MaxUint32 {
		return bson.Timestamp{T: ts.T + 1}
	}
	return bson.Timestamp{T: ts.T, I: ts.I + 1}
}

func (r *OplogReader) latest(ctx context.Context, commit bool) (migration.Position, error) {
	r.mu.Lock()
	if r.running {
		r.forceCatalog = r.forceCatalog || commit
		r.commitPoll = r.commitPoll || commit
		target := r.started + 1
		for r.done < target && r.running {
			ch := r.pollCh
			r.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return migration.Position{}, ctx.Err()
			}
			r.mu.Lock()
		}
		if r.running {
			ts := r.newest
			if commit && !r.commitTS.IsZero() {
				ts = r.commitTS
			}
			r.mu.Unlock()
			return migration.Position{TS: ts}, nil
		}
	}
	r.mu.Unlock()
	ts, err := r.queryNewest(ctx)
	return migration.Position{TS: ts}, err
}

// queryNewest returns the largest ts among the most recently inserted
// entries (entries may be inserted slightly out of ts order).
func (r *OplogReader) queryNewest(ctx context.Context) (bson.Timestamp, error) {
	var newest bson.Timestamp
	err := retry(ctx, r.logger, "read newest oplog entry", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
		cur, err := r.oplog().Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "$natural", Value: -1}}).
			SetLimit(64).SetProjection(bson.D{{Key: "ts", Value: 1}}))
		if err != nil {
			return err
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			if ts, ok := tsOf(cur.Current); ok && migration.CompareTS(ts, newest) > 0 {
				newest = ts
			}
		}
		return cur.Err()
	})
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("read newest oplog entry: %w", err)
	}
	return newest, nil
}

func tsOf(doc bson.Raw) (bson.Timestamp, bool) {
	t, i, ok := doc.Lookup("ts").TimestampOK()
	return bson.Timestamp{T: t, I: i}, ok
}

// oldest returns the oldest entry's ts (find with no sort, limit 1: the
// capped collection's natural order) and whether the oplog is empty.
func (r *OplogReader) oldest(ctx context.Context) (bson.Timestamp, bool, error) {
	var ts bson.Timestamp
	found := false
	err := retry(ctx, r.logger, "read oldest oplog entry", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
		raw, err := r.oplog().FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "ts", Value: 1}})).Raw()
		if errors.Is(err, mongo.ErrNoDocuments) {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		ts, found = tsOf(raw)
		return nil
	})
	return ts, !found, err
}

// mayHaveTrimmed reports whether the oplog may have dropped entries: always
// for size-bounded oplogs (MongoDB), and for a count-bounded one (FerretDB)
// once it holds its maximum.
func (r *OplogReader) mayHaveTrimmed(ctx context.Context) (bool, error) {
	specs, err := r.client.Database("local").ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil || len(specs) == 0 {
		return true, err
	}
	maxDocs, ok := specs[0].Options.Lookup("max").AsInt64OK()
	if !ok || maxDocs <= 0 {
		return true, nil
	}
	n, err := r.oplog().EstimatedDocumentCount(ctx)
	if err != nil {
		return true, err
	}
	return n >= maxDocs, nil
}

// historyFrom is the position lost history is judged against. A copy's start
// point (Replay > 0) is a server clock reading (seconds, 0): entries of that
// same second may precede the moment it was taken, so they may be trimmed
// without anything after the start point being lost. Later positions are
// exact entry timestamps.
func (r *OplogReader) historyFrom(from migration.Position) migration.Position {
	if r.opts.Replay > 0 && from.TS.I == 0 {
		from.TS.I = math.MaxUint32
	}
	return from
}

// checkHistory fails with ErrHistoryLost when entries after from are gone.
func (r *OplogReader) checkHistory(ctx context.Context, from migration.Position) error {
	oldest, empty, err := r.oldest(ctx)
	if err != nil {
		return err
	}
	if empty || migration.CompareTS(oldest, from.TS) <= 0 {
		return nil
	}
	trimmed, err := r.mayHaveTrimmed(ctx)
	if err != nil {
		return fmt.Errorf("check oplog size: %w", err)
	}
	if !trimmed {
		return nil
	}
	return &HistoryLostError{From: from, Oldest: migration.Position{TS: oldest}}
}

type pollMark struct {
	at     time.Time
	newest bson.Timestamp
}

// Run implements Reader.
func (r *OplogReader) Run(ctx context.Context, from migration.Position, out chan<- migration.Event) error {
	defer close(out)
	r.mu.Lock()
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		close(r.pollCh)
		r.pollCh = make(chan struct{})
		r.mu.Unlock()
	}()

	if from.IsZero() {
		ts, err := r.queryNewest(ctx)
		if err != nil {
			return err
		}
		from = migration.Position{TS: ts}
	} else if err := r.checkHistory(ctx, r.historyFrom(from)); err != nil {
		return err
	}
	eager := r.opts.Settle > 0 && r.opts.FullImageUpdates
	if back := uint32((max(r.opts.Replay, r.ResumeReplay()) + time.Second - 1) / time.Second); back > 0 {
		from = migration.Position{TS: bson.Timestamp{T: from.TS.T - min(from.TS.T, back)}}
	}
	r.logger.Info("oplog capture started", "ts", fmtTS(from.TS), "settle", r.opts.Settle, "eager", eager, "catalog_ddl", r.opts.CatalogDDL)

	var prevCat Catalog
	var lastCat time.Time
	if r.opts.CatalogDDL {
		var err error
		if r.opts.Baseline != nil {
			prevCat, err = r.opts.Baseline(ctx)
		} else {
			prevCat, err = r.readCatalog(ctx)
		}
		if err != nil {
			return fmt.Errorf("read catalog baseline: %w", err)
		}
		lastCat = time.Now()
	}

	parser := newEntryParser(r.opts.Filter, r.opts.FullImageUpdates)
	seen := map[string]bson.Timestamp{} // entry key → ts (dedupe inside the overlap window)
	released := from.TS                 // every entry at or before it has been sent
	newest := from.TS
	var pending []migration.Event
	var marks []pollMark
	var sent newestSent // eager: the newest position sent per document and dropped namespace
	lastSent := from.TS
	first := true

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.mu.Lock()
		r.started++
		force, commit := r.forceCatalog, r.commitPoll
		r.forceCatalog, r.commitPoll = false, false
		r.mu.Unlock()

		pollStart := time.Now()
		var catEvents []migration.Event
		if r.opts.CatalogDDL && (force || time.Since(lastCat) >= r.opts.CatalogEvery) {
			cur, err := r.readCatalog(ctx)
			if err != nil {
				return err
			}
			catEvents, prevCat, lastCat = diffCatalog(prevCat, cur), cur, time.Now()
		}

		low := released
		if r.opts.Settle > 0 {
			back := uint32((r.opts.Window + time.Second - 1) / time.Second)
			low = bson.Timestamp{T: released.T - min(back, released.T)}
		}
		n, late := 0, 0
		err := retry(ctx, r.logger, "poll oplog", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
			cur, err := r.oplog().Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: low}}}},
				options.Find().SetBatchSize(5000))
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			for cur.Next(ctx) {
				var e oplogEntry
				if err := bson.Unmarshal(cur.Current, &e); err != nil {
					return fmt.Errorf("decode oplog entry: %w", err)
				}
				key := entryKey(e)
				if _, dup := seen[key]; dup {
					continue
				}
				seen[key] = e.TS
				if migration.CompareTS(e.TS, from.TS) < 0 || (r.opts.Settle == 0 && !first && migration.CompareTS(e.TS, released) <= 0) {
					continue // before our start, or (ordered oplogs) already sent
				}
				if r.opts.Settle > 0 && migration.CompareTS(e.TS, released) <= 0 && migration.CompareTS(e.TS, from.TS) > 0 {
					if eager {
						late++
					} else {
						r.logger.Warn("oplog entry became visible after the settle window", "ts", fmtTS(e.TS), "ns", e.NS)
					}
				}
				evs, err := parser.parse(e)
				if err != nil {
					return err
				}
				pending = append(pending, evs...)
				if migration.CompareTS(e.TS, newest) > 0 {
					newest = e.TS
				}
				n++
			}
			return cur.Err()
		})
		if err != nil {
			return fmt.Errorf("poll oplog from %s: %w", fmtTS(low), err)
		}
		if r.opts.CatalogDDL {
			creates, err := r.createsBeforeData(ctx, prevCat, pending)
			if err != nil {
				return err
			}
			for _, ev := range pending {
				if !ev.Op.IsDDL() && ev.Op != migration.OpNoop {
					prevCat.noteData(ev.NS)
				}
			}
			pending = append(pending, creates...)
		}
		now := time.Now()
		for i := range catEvents {
			catEvents[i].Pos, catEvents[i].Wall = migration.Position{TS: newest}, now
			if catEvents[i].Op == migration.OpCreate {
				// Before the collection's first document in this poll: the
				// listing ran before the poll, so the collection existed
				// before any of them (a document first would create it
				// without its options).
				for _, ev := range pending {
					if ev.NS == catEvents[i].NS && !ev.Op.IsDDL() && ev.Op != migration.OpNoop && migration.CompareTS(ev.Pos.TS, catEvents[i].Pos.TS) < 0 {
						catEvents[i].Pos = ev.Pos
					}
				}
			}
		}
		pending = append(pending, catEvents...)
		marks = append(marks, pollMark{at: now, newest: newest})

		var commitTS bson.Timestamp
		r.mu.Lock()
		r.newest = newest
		if commit && eager {
			commitTS = after(newest)
			r.commitTS = commitTS
		}
		r.done++
		close(r.pollCh)
		r.pollCh = make(chan struct{})
		r.mu.Unlock()

		// The release boundary: entries at or before it are all visible
		// (eager: all sent, and any that show up later are handled by sent).
		boundary := newest
		r.logger.Debug("oplog polled", "entries", n, "late", late, "catalog", catEvents != nil || lastCat.After(pollStart),
			"newest", fmtTS(newest), "took", now.Sub(pollStart).Round(time.Millisecond))
		if r.opts.Settle > 0 && !eager {
			boundary = released
			keep := marks[:0]
			for _, m := range marks {
				if now.Sub(m.at) >= r.opts.Settle {
					boundary = m.newest
				} else {
					keep = append(keep, m)
				}
			}
			marks = keep
		} else {
			marks = marks[:0]
		}
		if migration.CompareTS(boundary, released) < 0 {
			boundary = released
		}
		sortEvents(pending)
		i := 0
		for ; i < len(pending) && migration.CompareTS(pending[i].Pos.TS, boundary) <= 0; i++ {
			if eager && !sent.admit(pending[i]) {
				continue
			}
			if err := send(ctx, out, pending[i]); err != nil {
				return err
			}
			lastSent = migration.MaxTS(lastSent, pending[i].Pos.TS)
		}
		pending = append(pending[:0], pending[i:]...)
		if migration.CompareTS(boundary, lastSent) > 0 {
			// Out-of-scope entries and quiet periods still move the checkpoint.
			if err := send(ctx, out, migration.Event{Op: migration.OpNoop, Pos: migration.Position{TS: boundary}, Wall: now}); err != nil {
				return err
			}
			lastSent = boundary
		}
		if !commitTS.IsZero() {
			if err := send(ctx, out, migration.Event{Op: migration.OpNoop, Pos: migration.Position{TS: commitTS}, Wall: now}); err != nil {
				return err
			}
			lastSent = commitTS
		}
		released, first = boundary, false

		if r.opts.Settle > 0 {
			horizon := released.T - min(released.T, uint32(r.opts.Window/time.Second)+2)
			for k, ts := range seen {
				if ts.T < horizon {
					delete(seen, k)
				}
			}
			sent.forget(horizon)
		} else {
			clear(seen)
		}
		if oldest, empty, err := r.oldest(ctx); err != nil {
			return err
		} else if !empty && migration.CompareTS(oldest, newest) > 0 {
			return &HistoryLostError{From: migration.Position{TS: newest}, Oldest: migration.Position{TS: oldest}}
		}

		if n < 1000 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(r.opts.Poll):
			}
		}
	}
}

// entryKey identifies an entry for de-duplication: FerretDB gives every
// entry an ObjectId; MongoDB's timestamps are unique.
func entryKey(e oplogEntry) string {
	if oid, ok := e.ID.ObjectIDOK(); ok {
		return oid.Hex()
	}
	return fmt.Sprintf("%d.%d", e.TS.T, e.TS.I)
}

// createsBeforeData returns a create, with the collection's options, for
// each namespace pending data events name that the catalog does not know
// yet, at the position of its first event (creates sort before data at
// one position). Without it the data would create the collection
// implicitly on the destination, without options, and the create of the
// next listing would find it existing: a capped collection would stay
// uncapped. Each such namespace enters cat (without indexes, which the
// next listing adds). A collection already gone from the source is left to
// noteData and the next listing.
func (r *OplogReader) createsBeforeData(ctx context.Context, cat Catalog, pending []migration.Event) ([]migration.Event, error) {
	first := map[migration.Namespace]migration.Event{}
	for _, ev := range pending {
		if ev.Op.IsDDL() || ev.Op == migration.OpNoop {
			continue
		}
		if _, known := cat[ev.NS]; known {
			continue
		}
		if f, ok := first[ev.NS]; !ok || migration.CompareTS(ev.Pos.TS, f.Pos.TS) < 0 {
			first[ev.NS] = ev
		}
	}
	var out []migration.Event
	for ns, ev := range first {
		var specs []mongo.CollectionSpecification
		err := retry(ctx, r.logger, "read collection options", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
			var err error
			specs, err = r.client.Database(ns.DB).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: ns.Coll}})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read options of %s: %w", ns, err)
		}
		if len(specs) == 1 && specs[0].Type == "collection" {
			out = append(out, migration.Event{Op: migration.OpCreate, NS: ns, Options: specs[0].Options, Pos: ev.Pos, Wall: ev.Wall})
			// Known from now on; the next listing adds its indexes.
			cat[ns] = CollectionInfo{Options: specs[0].Options, Indexes: map[string]bson.Raw{}}
		}
	}
	return out, nil
}

func (r *OplogReader) readCatalog(ctx context.Context) (Catalog, error) {
	var cat Catalog
	err := retry(ctx, r.logger, "read catalog", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
		var err error
		cat, err = ReadCatalog(ctx, r.client, r.opts.Filter)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read source catalog: %w", err)
	}
	return cat, nil
}

// newestSent remembers, for the documents and dropped namespaces of the
// overlap window, the newest position sent, so that an entry showing up
// late (FerretDB: out of timestamp order) never replaces a newer state of
// its document, nor brings back a collection dropped after it was written.
// Only for full-image entries: each one is its document's whole state, so
// the newest one wins whatever the order they arrive in.
type newestSent struct {
	docs  map[string]bson.Timestamp // namespace + _id → ts
	drops map[string]bson.Timestamp // namespace (or database) → ts of its drop
}

// admit reports whether ev is to be sent, and records it.
func (s *newestSent) admit(ev migration.Event) bool {
	if s.docs == nil {
		s.docs, s.drops = map[string]bson.Timestamp{}, map[string]bson.Timestamp{}
	}
	switch {
	case ev.Op == migration.OpDrop:
		s.drops[ev.NS.String()] = migration.MaxTS(s.drops[ev.NS.String()], ev.Pos.TS)
	case ev.Op == migration.OpDropDatabase:
		s.drops[ev.NS.DB] = migration.MaxTS(s.drops[ev.NS.DB], ev.Pos.TS)
	case ev.Op.IsDDL() || ev.Op == migration.OpNoop:
	default:
		for _, k := range []string{ev.NS.String(), ev.NS.DB} {
			if d, ok := s.drops[k]; ok && migration.CompareTS(ev.Pos.TS, d) < 0 {
				return false
			}
		}
		id := ev.DocumentKey.Lookup("_id")
		k := ev.NS.String() + "\x00" + string(rune(id.Type)) + string(id.Value)
		if t, ok := s.docs[k]; ok && migration.CompareTS(ev.Pos.TS, t) < 0 {
			return false
		}
		s.docs[k] = ev.Pos.TS
	}
	return true
}

// forget drops what is older than the oldest second a poll still reads.
func (s *newestSent) forget(horizon uint32) {
	for k, t := range s.docs {
		if t.T < horizon {
			delete(s.docs, k)
		}
	}
	for k, t := range s.drops {
		if t.T < horizon {
			delete(s.drops, k)
		}
	}
}
