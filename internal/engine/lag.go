package engine

import (
	"context"
	"time"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// measureLag returns the lag given the applied checkpoint: the reader's own
// account when it keeps one (capture.LagReporter: the oplog reader knows
// the source time of every change it sent and when its last poll started),
// otherwise the stamps of m over the positions Latest returns.
func measureLag(ctx context.Context, reader capture.Reader, m *lagMeter, applied migration.Position) (time.Duration, error) {
	if lr, ok := reader.(capture.LagReporter); ok {
		return lr.Lag(applied, time.Now()), nil
	}
	newest, err := reader.Latest(ctx)
	if err != nil {
		return 0, err
	}
	return m.observe(newest, applied, time.Now()), nil
}

// lagEvery is how often change application reads the lag: 4 times a
// second from a capture.LagReporter (a reading costs a lock, so the lag
// and canCommit shown are never more than 250 ms old), once a second from
// the other readers (a reading asks the reader for its newest position).
func lagEvery(reader capture.Reader) time.Duration {
	if _, ok := reader.(capture.LagReporter); ok {
		return 250 * time.Millisecond
	}
	return time.Second
}

// canCommitAt says whether a lag allows the commit: the lag itself, not
// its rounding to whole seconds (5.4 s shows as 5 but is above 5 s), so
// canCommit never rests on a lag lower than the one measured.
func canCommitAt(lag time.Duration) bool { return lag <= DefaultCommitLag }

// lagMeter, for readers that are not a capture.LagReporter, measures lag as the age of the oldest change the engine knows of
// but has not applied. Each newest source position the engine observes is
// stamped with the wall-clock time it was first seen; lag is the time since
// the oldest stamped position that is still after the applied checkpoint.
//
// The plain difference newest.TS.T − applied.TS.T is wrong after a quiet
// period on a source whose oplog only advances with writes (FerretDB; and a
// MongoDB between its 10 s no-ops): the first write after a quiet minute
// made lag jump to a minute and canCommit flip to false, though nothing was
// waiting for more than a second. The stamps need no clock agreement with
// the source. They under-read by the time a change waits before the
// reader returns it from Latest (on FerretDB a whole oplog poll, which is
// why the oplog reader reports its own lag) plus one observation interval.
//
// The first observation of a run is the exception: a backlog that is already
// there (the changes made during the copy, or while the engine was stopped)
// was not just made, so it is stamped with the source time of the applied
// checkpoint, the latest its oldest change can date from (never later than
// now). Otherwise a run reported lag 0 and canCommit while its backlog was
// still unapplied.
type lagMeter struct {
	seen    []lagStamp // increasing positions, oldest first
	started bool       // a first observation was made
}

type lagStamp struct {
	pos migration.Position
	at  time.Time
}

// observe records newest as seen at now and returns the lag given applied.
func (m *lagMeter) observe(newest, applied migration.Position, now time.Time) time.Duration {
	if n := len(m.seen); n == 0 || m.seen[n-1].pos.Before(newest) {
		at := now
		if !m.started && applied.Before(newest) && applied.TS.T > 0 {
			if src := time.Unix(int64(applied.TS.T), 0); src.Before(now) {
				at = src
			}
		}
		m.seen = append(m.seen, lagStamp{pos: newest, at: at})
	}
	m.started = true
	i := 0
	for i < len(m.seen) && !applied.Before(m.seen[i].pos) {
		i++
	}
	m.seen = append(m.seen[:0], m.seen[i:]...)
	if len(m.seen) == 0 {
		return 0
	}
	return now.Sub(m.seen[0].at)
}

// lagSeconds rounds a lag to whole seconds for Progress.
func lagSeconds(d time.Duration) int64 { return int64(d.Round(time.Second) / time.Second) }
