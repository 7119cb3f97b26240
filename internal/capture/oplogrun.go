package capture

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// One Run of the oplog reader is a loop of polls. Each poll, in order:
//
//  1. serves the waiters of Latest and CommitPoint (beginPoll / endPoll);
//  2. compares the catalog when it is due (catalogWatch);
//  3. reads the entries from low() on and keeps the new ones (read, admit);
//  4. computes how far entries may be released (boundary) and sends them
//     in position order, with a no-op at the boundary (release);
//  5. forgets what no later poll can read again (forget);
//  6. checks that the oplog has not been trimmed past what was seen
//     (checkHistory against the newest entry read before the poll).
//
// oplogRun holds the state the polls share; each step is a method that can
// be read and tested on its own.

// oplogRun is the state of one Run.
type oplogRun struct {
	opts   OplogOptions
	eager  bool               // full-image entries with holes: send at once (see OplogOptions.Settle)
	from   migration.Position // nothing before it is sent
	parser *entryParser

	seen     map[string]bson.Timestamp // entry key → ts (dedupe inside the overlap window)
	released bson.Timestamp            // every entry at or before it has been sent
	newest   bson.Timestamp            // newest entry read
	lastSent bson.Timestamp            // newest position sent
	pending  []migration.Event         // read, not yet released
	marks    []pollMark                // settle (not eager): when each poll saw its newest
	sent     newestSent                // eager: the newest position sent per document and dropped namespace
	sizer    *mdb.BatchSizer           // the polls' batch sizes, by the bytes of the entries
	first    bool                      // no poll has finished yet
}

type pollMark struct {
	at     time.Time
	newest bson.Timestamp
}

func newOplogRun(opts OplogOptions, from migration.Position) *oplogRun {
	return &oplogRun{
		opts:     opts,
		eager:    opts.Settle > 0 && opts.FullImageUpdates,
		from:     from,
		parser:   newEntryParser(opts.Filter, opts.FullImageUpdates),
		seen:     map[string]bson.Timestamp{},
		released: from.TS,
		newest:   from.TS,
		lastSent: from.TS,
		first:    true,
		sizer:    mdb.NewBatchSizer(mdb.SizerOptions{MaxDocs: 5000}),
	}
}

// secondsCeil is d in whole seconds, rounded up.
func secondsCeil(d time.Duration) uint32 { return uint32((d + time.Second - 1) / time.Second) }

// backTS is ts moved back by sec seconds (never before 0), at counter 0.
func backTS(ts bson.Timestamp, sec uint32) bson.Timestamp {
	return bson.Timestamp{T: ts.T - min(sec, ts.T)}
}

// low is where a poll starts reading: the released boundary, or with holes
// (Settle > 0) Window before it, so entries that became visible late are
// still read.
func (s *oplogRun) low() bson.Timestamp {
	if s.opts.Settle > 0 {
		return backTS(s.released, secondsCeil(s.opts.Window))
	}
	return s.released
}

// admit decides about an entry a poll read: keep reports whether it is new
// and in range (it is then recorded as seen); late whether it is older than
// what was already released (it became visible out of order).
func (s *oplogRun) admit(e oplogEntry) (keep, late bool) {
	key := entryKey(e)
	if _, dup := s.seen[key]; dup {
		return false, false
	}
	s.seen[key] = e.TS
	if migration.CompareTS(e.TS, s.from.TS) < 0 {
		return false, false // before our start
	}
	if s.opts.Settle == 0 && !s.first && migration.CompareTS(e.TS, s.released) <= 0 {
		return false, false // ordered oplogs: already sent
	}
	late = s.opts.Settle > 0 && migration.CompareTS(e.TS, s.released) <= 0 && migration.CompareTS(e.TS, s.from.TS) > 0
	return true, late
}

// take parses a kept entry into pending events.
func (s *oplogRun) take(e oplogEntry) error {
	evs, err := s.parser.parse(e)
	if err != nil {
		return err
	}
	s.pending = append(s.pending, evs...)
	s.newest = migration.MaxTS(s.newest, e.TS)
	return nil
}

// boundary is how far the poll that ended at now may release: the newest
// entry read; with a settle window (holes, no full images) the newest of the
// polls at least Settle old. Never before what was already released.
func (s *oplogRun) boundary(now time.Time) bson.Timestamp {
	s.marks = append(s.marks, pollMark{at: now, newest: s.newest})
	b := s.newest
	if s.opts.Settle > 0 && !s.eager {
		b = s.released
		keep := s.marks[:0]
		for _, m := range s.marks {
			if now.Sub(m.at) >= s.opts.Settle {
				b = m.newest
			} else {
				keep = append(keep, m)
			}
		}
		s.marks = keep
	} else {
		s.marks = s.marks[:0]
	}
	return migration.MaxTS(b, s.released)
}

// release sends the pending events at or before boundary in position order
// (eager: unless newestSent says a newer state was already sent), then a
// no-op at boundary if nothing reached it (out-of-scope entries and quiet
// periods still move the checkpoint), then one at commitTS if a commit
// point was asked for. sentAt is called for each change sent.
func (s *oplogRun) release(ctx context.Context, out chan<- migration.Event, boundary, commitTS bson.Timestamp, now time.Time, sentAt func(migration.Event)) error {
	sortEvents(s.pending)
	i := 0
	for ; i < len(s.pending) && migration.CompareTS(s.pending[i].Pos.TS, boundary) <= 0; i++ {
		ev := s.pending[i]
		if s.eager && !s.sent.admit(ev) {
			continue
		}
		if err := send(ctx, out, ev); err != nil {
			return err
		}
		if sentAt != nil {
			sentAt(ev)
		}
		s.lastSent = migration.MaxTS(s.lastSent, ev.Pos.TS)
	}
	s.pending = append(s.pending[:0], s.pending[i:]...)
	if migration.CompareTS(boundary, s.lastSent) > 0 {
		if err := send(ctx, out, migration.Event{Op: migration.OpNoop, Pos: migration.Position{TS: boundary}, Wall: now}); err != nil {
			return err
		}
		s.lastSent = boundary
	}
	if !commitTS.IsZero() {
		if err := send(ctx, out, migration.Event{Op: migration.OpNoop, Pos: migration.Position{TS: commitTS}, Wall: now}); err != nil {
			return err
		}
		s.lastSent = commitTS
	}
	s.released, s.first = boundary, false
	return nil
}

// forget drops the seen entries and sent states no later poll can read
// again: older than the overlap window (plus a second of margin), or all
// of them for ordered oplogs.
func (s *oplogRun) forget() {
	if s.opts.Settle == 0 {
		clear(s.seen)
		return
	}
	horizon := s.released.T - min(s.released.T, uint32(s.opts.Window/time.Second)+2)
	for k, ts := range s.seen {
		if ts.T < horizon {
			delete(s.seen, k)
		}
	}
	s.sent.forget(horizon)
}

// Run implements Reader.
func (r *OplogReader) Run(ctx context.Context, from migration.Position, out chan<- migration.Event) error {
	defer close(out)
	r.setRunning(true)
	defer r.setRunning(false)

	from, floor, err := r.startPosition(ctx, from)
	if err != nil {
		return err
	}
	s := newOplogRun(r.opts, from)
	r.logger.Info("oplog capture started", "ts", migration.FormatTS(from.TS), "settle", r.opts.Settle, "eager", s.eager, "catalog_ddl", r.opts.CatalogDDL)
	r.measureClock(ctx)
	r.startLag(from.TS)

	var cat *catalogWatch
	if r.opts.CatalogDDL {
		if cat, err = r.newCatalogWatch(ctx); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pollCtx, endPollCtx, force, commit := r.beginPoll(ctx)
		pollStart := time.Now()
		var catEvents []migration.Event
		var catNow Catalog
		if cat != nil && cat.due(force, pollStart) {
			if catEvents, catNow, err = cat.compare(ctx, r); err != nil {
				return err
			}
		}
		readStart := time.Now() // the read sees what was written before it started
		before := s.newest      // every entry after it must still be there when the read ends
		if migration.CompareTS(before, floor) < 0 {
			before = floor
		}
		n, late, err := r.read(pollCtx, s)
		endPollCtx()
		if err != nil && ctx.Err() == nil && pollCtx.Err() != nil {
			// A commit point was asked for during this poll: it cannot
			// serve it (it started before the request), so it gives way to
			// one that can, at once. What it read stays pending; the
			// catalog is compared again.
			r.abortedPoll(force, commit)
			r.logger.Debug("oplog poll aborted for a commit point", "took", time.Since(pollStart).Round(time.Millisecond))
			continue
		}
		r.endRead()
		if err != nil {
			return err
		}
		if catNow != nil {
			cat.accept(catNow)
		}
		var creates []migration.Event
		if cat != nil {
			if creates, err = r.createsBeforeData(ctx, cat.prev, s.pending); err != nil {
				return err
			}
			cat.noteData(s.pending)
		}
		s.pending = append(s.pending, creates...)
		now := time.Now()
		for i := range catEvents {
			catEvents[i].Pos, catEvents[i].Wall = migration.Position{TS: s.newest}, now
			if catEvents[i].Op == migration.OpCreate {
				catEvents[i].Pos = firstDataPos(s.pending, catEvents[i].NS, catEvents[i].Pos)
			}
		}
		s.pending = append(s.pending, catEvents...)
		var commitTS bson.Timestamp
		if commit && s.eager {
			commitTS = after(s.newest)
		}
		r.endPoll(s.newest, commitTS)

		boundary := s.boundary(now)
		r.logger.Debug("oplog polled", "entries", n, "late", late, "catalog", catEvents != nil,
			"newest", migration.FormatTS(s.newest), "took", now.Sub(pollStart).Round(time.Millisecond))
		if err := s.release(ctx, out, boundary, commitTS, now, r.noteSent); err != nil {
			return err
		}
		r.polled(readStart)
		s.forget()
		// Lost history is judged against the newest entry read before this
		// poll, not by it: a burst that overran the oplog between two polls
		// leaves only its tail for this poll to read, its first entries
		// trimmed unseen.
		if err := r.checkHistory(ctx, migration.Position{TS: before}); err != nil {
			return err
		}
		if !commitTS.IsZero() {
			// Every entry up to the commit point is sent and the source
			// takes no writes: another poll (on FerretDB a scan of the
			// whole oplog) would only compete with the drain. Poll again
			// only for a caller that waits for one.
			if err := r.idle(ctx); err != nil {
				return err
			}
			continue
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

// idle waits until a Latest or CommitPoint call waits for a poll.
func (r *OplogReader) idle(ctx context.Context) error {
	for {
		r.mu.Lock()
		wanted := r.waiting > 0 || r.commitPoll || r.forceCatalog
		r.mu.Unlock()
		if wanted {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.opts.Poll):
		}
	}
}

// setRunning marks Run as running or not; when it stops, waiters of Latest
// are woken and fall back to a query of their own.
func (r *OplogReader) setRunning(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = on
	if !on {
		close(r.pollCh)
		r.pollCh = make(chan struct{})
	}
}

// startPosition is where Run starts: the newest entry for a zero from,
// otherwise from (after checking the oplog still holds what follows it)
// moved back by the replay (Replay, ResumeReplay) in whole seconds. floor
// is the position lost history is judged against before the first poll
// (the replay window before it may be trimmed without loss).
func (r *OplogReader) startPosition(ctx context.Context, from migration.Position) (start migration.Position, floor bson.Timestamp, err error) {
	if from.IsZero() {
		ts, err := r.queryNewest(ctx)
		if err != nil {
			return migration.Position{}, bson.Timestamp{}, err
		}
		from = migration.Position{TS: ts}
		floor = ts
	} else {
		floor = r.historyFrom(from).TS
		if err := r.checkHistory(ctx, r.historyFrom(from)); err != nil {
			return migration.Position{}, bson.Timestamp{}, err
		}
	}
	if back := secondsCeil(max(r.opts.Replay, r.ResumeReplay())); back > 0 {
		from = migration.Position{TS: backTS(from.TS, back)}
	}
	return from, floor, nil
}

// beginPoll counts a poll as started and takes the requests it serves:
// force a catalog comparison, serve a commit point. Its read runs under
// the context returned, which a commit point request cancels (abortRead)
// unless the poll serves one already.
func (r *OplogReader) beginPoll(ctx context.Context) (pollCtx context.Context, cancel context.CancelFunc, force, commit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started++
	force, commit = r.forceCatalog, r.commitPoll
	r.forceCatalog, r.commitPoll = false, false
	pollCtx, cancel = context.WithCancel(ctx)
	r.abortRead = cancel
	if commit {
		r.abortRead = nil // serving a commit point: never aborted
	}
	return pollCtx, cancel, force, commit
}

// endRead says the poll's read is over: it can no longer be aborted.
func (r *OplogReader) endRead() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abortRead = nil
}

// abortedPoll counts an aborted poll as finished (its waiters wait for the
// next one) and gives its requests back to the next poll.
func (r *OplogReader) abortedPoll(force, commit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abortRead = nil
	r.forceCatalog = r.forceCatalog || force
	r.commitPoll = r.commitPoll || commit
	r.done++
	close(r.pollCh)
	r.pollCh = make(chan struct{})
}

// endPoll publishes what a poll found and wakes the waiters of Latest and
// CommitPoint.
func (r *OplogReader) endPoll(newest, commitTS bson.Timestamp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.newest = newest
	if !commitTS.IsZero() {
		r.commitTS = commitTS
	}
	r.done++
	close(r.pollCh)
	r.pollCh = make(chan struct{})
}

// read runs one poll's query: every entry from s.low() on, in natural order
// (FerretDB reads the whole capped collection for any filter on it: see
// docs/design/capture.md), keeping the new ones. It returns how many were
// kept and how many of those were late.
func (r *OplogReader) read(ctx context.Context, s *oplogRun) (n, late int, err error) {
	low := s.low()
	err = mdb.RetryEach(ctx, r.logger, "poll oplog", r.opts.Retry, r.opts.AttemptTimeout, func(ctx context.Context) error {
		err := r.readFrom(ctx, s, low, &n, &late)
		if mdb.IsReplyTooLarge(err) && !s.sizer.TooLarge() {
			return fmt.Errorf("one oplog entry is larger than a reply can carry: %w", err)
		}
		return err
	})
	if err != nil {
		return n, late, fmt.Errorf("poll oplog from %s: %w", migration.FormatTS(low), err)
	}
	return n, late, nil
}

// readFrom is one attempt of read: entries are full document images (up
// to 16 MiB each on FerretDB), so every batch is sized by the bytes of the
// entries received (mdb.BatchSizer); a reply too large for the driver makes
// the next attempt read that stretch in smaller batches.
func (r *OplogReader) readFrom(ctx context.Context, s *oplogRun, low bson.Timestamp, n, late *int) error {
	cur, err := mdb.Find(ctx, r.oplog(), bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: low}}}}, s.sizer)
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(ctx) }()
	for cur.Next(ctx) {
		var e oplogEntry
		if err := bson.Unmarshal(cur.Current(), &e); err != nil {
			return fmt.Errorf("decode oplog entry: %w", err)
		}
		keep, isLate := s.admit(e)
		if !keep {
			continue
		}
		if isLate {
			if s.eager {
				*late++
			} else {
				r.logger.Warn("oplog entry became visible after the settle window", "ts", migration.FormatTS(e.TS), "ns", e.NS)
			}
		}
		if err := s.take(e); err != nil {
			return err
		}
		*n++
	}
	return cur.Err()
}

// catalogWatch compares the source's catalog on a schedule (CatalogDDL).
type catalogWatch struct {
	prev  Catalog
	last  time.Time
	every time.Duration
}

// newCatalogWatch reads the baseline the comparisons start from.
func (r *OplogReader) newCatalogWatch(ctx context.Context) (*catalogWatch, error) {
	var prev Catalog
	var err error
	if r.opts.Baseline != nil {
		prev, err = r.opts.Baseline(ctx)
	} else {
		prev, err = r.readCatalog(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("read catalog baseline: %w", err)
	}
	return &catalogWatch{prev: prev, last: time.Now(), every: r.opts.CatalogEvery}, nil
}

// due reports whether a poll starting at now compares the catalog.
func (w *catalogWatch) due(force bool, now time.Time) bool {
	return force || now.Sub(w.last) >= w.every
}

// compare reads the catalog and returns the DDL events since the last
// comparison accepted, and the catalog read (for accept). It runs before
// the poll's oplog read: the events get that read's newest position.
func (w *catalogWatch) compare(ctx context.Context, r *OplogReader) ([]migration.Event, Catalog, error) {
	cur, err := r.readCatalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	return diffCatalog(w.prev, cur), cur, nil
}

// accept makes cur, whose events a poll has taken, the catalog the next
// comparison starts from.
func (w *catalogWatch) accept(cur Catalog) {
	w.prev, w.last = cur, time.Now()
}

// noteData records the collections the events write to (Catalog.noteData).
func (w *catalogWatch) noteData(evs []migration.Event) {
	for _, ev := range evs {
		if !ev.Op.IsDDL() && ev.Op != migration.OpNoop {
			w.prev.noteData(ev.NS)
		}
	}
}
