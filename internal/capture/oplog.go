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
	// abortRead cancels the running poll's read, when a commit point
	// request may abort it (see beginPoll).
	abortRead context.CancelFunc
	lag       lagTrack // when the changes sent were made (Lag)

	// waiting counts Latest and CommitPoint calls waiting for a poll.
	waiting int
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

// CommitPoint implements Reader. It is Latest, but the poll it waits for also compares the
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
		r.waiting++
		defer func() { r.mu.Lock(); r.waiting--; r.mu.Unlock() }()
		if commit && r.abortRead != nil {
			r.abortRead() // the running poll cannot serve it: the next one starts at once
			r.abortRead = nil
		}
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
	err := mdb.RetryEach(ctx, r.logger, "read newest oplog entry", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
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
	err := mdb.RetryEach(ctx, r.logger, "read oldest oplog entry", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
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

// historyFrom is the position lost history is judged against (HistoryFloor
// with this reader's Replay).
func (r *OplogReader) historyFrom(from migration.Position) migration.Position {
	return HistoryFloor(from, r.opts.Replay)
}

// HistoryFloor is the position lost history is judged against for a reader
// starting at from with the given replay. A copy's start point (replay > 0)
// is a server clock reading (seconds, 0): entries of that same second may
// precede the moment it was taken, so they may be trimmed without anything
// after the start point being lost. Later positions are exact entry
// timestamps. Entries up to it are replays the oplog need not keep.
func HistoryFloor(from migration.Position, replay time.Duration) migration.Position {
	if replay > 0 && from.TS.I == 0 {
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

// entryKey identifies an entry for de-duplication: FerretDB gives every
// entry an ObjectId; MongoDB's timestamps are unique.
func entryKey(e oplogEntry) string {
	if oid, ok := e.ID.ObjectIDOK(); ok {
		return oid.Hex()
	}
	return fmt.Sprintf("%d.%d", e.TS.T, e.TS.I)
}

func (r *OplogReader) readCatalog(ctx context.Context) (Catalog, error) {
	var cat Catalog
	err := mdb.RetryEach(ctx, r.logger, "read catalog", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
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
		err := mdb.RetryEach(ctx, r.logger, "read collection options", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
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

// firstDataPos returns the position of ns's first data event in pending if
// it is before pos, else pos. A create the catalog listing noticed goes
// there: the listing ran before the poll, so the collection existed before
// any of them (a document first would create it without its options).
func firstDataPos(pending []migration.Event, ns migration.Namespace, pos migration.Position) migration.Position {
	for _, ev := range pending {
		if ev.NS == ns && !ev.Op.IsDDL() && ev.Op != migration.OpNoop && migration.CompareTS(ev.Pos.TS, pos.TS) < 0 {
			pos = ev.Pos
		}
	}
	return pos
}
