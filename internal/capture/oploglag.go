package capture

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// LagReporter is implemented by readers that know when the changes they
// have not seen applied yet were made. The engine reports the lag from it
// when the reader has one (the oplog reader), instead of stamping the
// positions Latest returns with the time it first saw them — which misses
// the time a change waits to be read, a whole poll on FerretDB.
type LagReporter interface {
	// Lag returns how long before now the source made the oldest change
	// not at or before applied: of the changes sent, the oldest not applied;
	// when all those are applied and the source is being written to, the
	// oldest change the last poll could not see yet. 0 when caught up.
	Lag(applied migration.Position, now time.Time) time.Duration
}

// lagBucketWidth is the span of the entries one lag bucket groups.
const lagBucketWidth = 100 * time.Millisecond

// maxLagBuckets bounds the memory of lagTrack (an hour of sends not yet
// applied, at one bucket per 100 ms); past it, new sends join the last
// bucket.
const maxLagBuckets = 36000

// lagTrack remembers when the changes a reader sent were made, grouped by
// 100 ms of their time (converted to the local clock), so Lag can say how
// old the oldest one not yet applied is. It is guarded by OplogReader.mu.
type lagTrack struct {
	offset  time.Duration // source clock − local clock (hello.localTime at start)
	buckets []lagBucket   // in send order
	// pollStart is when the last finished poll's read started (its query
	// reads a snapshot taken then): entries made after it may be unread.
	pollStart time.Time
}

type lagBucket struct {
	newest bson.Timestamp // newest position in the bucket
	at     time.Time      // local time of its oldest change
}

// sent records a change sent: made at src on the source's clock (its
// entry's wall time), or at now when it has none (catalog events).
func (t *lagTrack) sent(pos bson.Timestamp, src, now time.Time) {
	at := now
	if !src.IsZero() {
		// Never later than it was sent: a clock offset measured wrong (a
		// slow round trip) must not hide a lag.
		at = src.Add(-t.offset)
		if at.After(now) {
			at = now
		}
	}
	if n := len(t.buckets); n > 0 {
		b := &t.buckets[n-1]
		if n >= maxLagBuckets || (at.Sub(b.at) < lagBucketWidth && at.Sub(b.at) > -lagBucketWidth) {
			b.newest = migration.MaxTS(b.newest, pos)
			if at.Before(b.at) {
				b.at = at
			}
			return
		}
	}
	t.buckets = append(t.buckets, lagBucket{newest: pos, at: at})
}

// started records that Run starts reading after from: until its first
// poll is done, every change since from may be unread, so lag counts from
// from's source time (a backlog made while the engine copied or was
// stopped is not a lag of 0).
func (t *lagTrack) started(from bson.Timestamp, now time.Time) {
	t.buckets = t.buckets[:0]
	t.pollStart = now
	if from.T > 0 {
		if src := time.Unix(int64(from.T), 0).Add(-t.offset); src.Before(now) {
			t.pollStart = src
		}
	}
}

// polled records a finished poll whose read started at start, once what
// it read was sent.
func (t *lagTrack) polled(start time.Time) {
	t.pollStart = start
}

// lag implements LagReporter.Lag; it forgets the buckets applied.
func (t *lagTrack) lag(applied migration.Position, now time.Time) time.Duration {
	var oldest time.Time
	keep := t.buckets[:0]
	for _, b := range t.buckets {
		if migration.CompareTS(b.newest, applied.TS) <= 0 {
			continue
		}
		keep = append(keep, b)
		if oldest.IsZero() || b.at.Before(oldest) {
			oldest = b.at
		}
	}
	t.buckets = keep
	if oldest.IsZero() {
		// Everything read is applied; what was written since the last read
		// started is unknown, so it counts as waiting since then. On a
		// quiet source that reads as the age of the reader's knowledge
		// (one poll), never as a jump: a poll that found nothing cannot
		// tell that writes were about to begin.
		oldest = t.pollStart
	}
	if oldest.IsZero() || !oldest.Before(now) {
		return 0
	}
	return now.Sub(oldest)
}

// Lag implements LagReporter.
func (r *OplogReader) Lag(applied migration.Position, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lag.lag(applied, now)
}

// polled records a finished poll whose read started at start, once what
// it read was sent.
func (r *OplogReader) polled(start time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lag.polled(start)
}

// noteSent records a change Run sent, for Lag.
func (r *OplogReader) noteSent(ev migration.Event) {
	if ev.Op == migration.OpNoop {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lag.sent(ev.Pos.TS, ev.Wall, time.Now())
}

// measureClock measures how far the source's clock is ahead of ours:
// hello.localTime against the middle of the round trip, of three tries the
// one with the shortest round trip (the least uncertain), so entries' wall
// times convert to our clock. Without an answer the clocks are taken to
// agree, and Lag is off by their difference.
func (r *OplogReader) measureClock(ctx context.Context) {
	var best, offset time.Duration
	for range 3 {
		var hello struct {
			LocalTime time.Time `bson:"localTime"`
		}
		actx, cancel := context.WithTimeout(ctx, r.opts.AttemptTimeout)
		t0 := time.Now()
		err := r.client.Database("admin").RunCommand(actx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello)
		rtt := time.Since(t0)
		cancel()
		if err != nil || hello.LocalTime.IsZero() {
			continue
		}
		if best == 0 || rtt < best {
			best, offset = rtt, hello.LocalTime.Sub(t0.Add(rtt/2))
		}
	}
	if best == 0 {
		r.logger.Warn("source clock not read: lag assumes the clocks agree")
		return
	}
	r.mu.Lock()
	r.lag.offset = offset
	r.mu.Unlock()
	r.logger.Debug("source clock read", "offset", offset, "round_trip", best)
}

// startLag records where Run starts reading (lagTrack.started).
func (r *OplogReader) startLag(from bson.Timestamp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lag.started(from, time.Now())
}
