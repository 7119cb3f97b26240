package engine

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/migration"
)

func TestLagMeter(t *testing.T) {
	pos := func(sec uint32) migration.Position { return migration.Position{TS: bson.Timestamp{T: sec}} }
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var m lagMeter
	steps := []struct {
		at              float64
		newest, applied uint32
		want            time.Duration
	}{
		{0, 100, 100, 0},                // caught up
		{60, 100, 100, 0},               // a quiet minute: nothing waits
		{61, 161, 100, 0},               // the first write after it: just seen, not 61 s
		{62, 162, 100, time.Second},     // waiting since 61
		{63, 163, 161, time.Second},     // 161 applied: the oldest waiting was seen at 62
		{64, 163, 163, 0},               // caught up
		{70, 170, 163, 0},               //
		{75, 170, 163, 5 * time.Second}, // nothing applied for 5 s: lag grows
	}
	for _, s := range steps {
		if got := m.observe(pos(s.newest), pos(s.applied), at(s.at)); got != s.want {
			t.Errorf("at %vs newest %d applied %d: lag %v, want %v", s.at, s.newest, s.applied, got, s.want)
		}
	}
	if len(m.seen) > 1 {
		t.Errorf("stamps kept: %d, want at most 1", len(m.seen))
	}
}

// TestLagMeterBacklogAtStart: a backlog present at the first observation
// (changes made during the copy) counts from the applied checkpoint's
// source time, not from when the engine first looked.
func TestLagMeterBacklogAtStart(t *testing.T) {
	pos := func(sec uint32) migration.Position { return migration.Position{TS: bson.Timestamp{T: sec, I: 1}} }
	now := time.Unix(2000, 0)
	var m lagMeter
	if got := m.observe(pos(1990), pos(1970), now); got != 30*time.Second {
		t.Fatalf("backlog since 1970 seen at 2000: lag %v, want 30s", got)
	}
	if got := m.observe(pos(1995), pos(1990), now.Add(time.Second)); got != 0 {
		t.Fatalf("backlog applied, 1995 just seen: lag %v, want 0", got)
	}
	if got := m.observe(pos(1995), pos(1990), now.Add(3*time.Second)); got != 2*time.Second {
		t.Fatalf("1995 waiting for 2 s: lag %v, want 2s", got)
	}
	var ahead lagMeter // a source clock ahead of ours never yields a negative lag
	if got := ahead.observe(pos(2100), pos(2050), now); got != 0 {
		t.Fatalf("source clock ahead: lag %v, want 0", got)
	}
}

// lagReader is a reader that keeps its own account of lag.
type lagReader struct {
	capture.Reader
	lag     time.Duration
	applied migration.Position
}

func (r *lagReader) Lag(applied migration.Position, now time.Time) time.Duration {
	r.applied = applied
	return r.lag
}

// TestMeasureLagPrefersTheReadersAccount: a capture.LagReporter's lag is
// reported as it is, for the applied checkpoint given, without a Latest
// call (the embedded nil Reader would panic on one).
func TestMeasureLagPrefersTheReadersAccount(t *testing.T) {
	r := &lagReader{lag: 6 * time.Second}
	applied := migration.Position{TS: bson.Timestamp{T: 50, I: 2}}
	var m lagMeter
	got, err := measureLag(context.Background(), r, &m, applied)
	if err != nil || got != 6*time.Second || r.applied.TS != applied.TS {
		t.Fatalf("measureLag = %v, %v (applied given %v), want 6s for %v", got, err, r.applied, applied)
	}
}

// TestLagReadingsAreFresh: from a reader that keeps its own account the
// lag is read 4 times a second, so the lag and canCommit shown lag the
// reader's by at most 250 ms (read once a second they showed, during a
// drop after a poll, the previous second's lag); other readers, whose
// reading asks the server, stay at once a second.
func TestLagReadingsAreFresh(t *testing.T) {
	if got := lagEvery(&lagReader{}); got != 250*time.Millisecond {
		t.Errorf("lagEvery(LagReporter) = %v, want 250ms", got)
	}
	if got := lagEvery(struct{ capture.Reader }{}); got != time.Second {
		t.Errorf("lagEvery(other reader) = %v, want 1s", got)
	}
}

// TestCanCommitRestsOnTheUnroundedLag: a lag that rounds down to the
// threshold is above it and does not allow the commit.
func TestCanCommitRestsOnTheUnroundedLag(t *testing.T) {
	for _, c := range []struct {
		lag  time.Duration
		want bool
	}{
		{0, true},
		{DefaultCommitLag, true},
		{DefaultCommitLag + 400*time.Millisecond, false}, // shows as 5 s
		{DefaultCommitLag + time.Second, false},
	} {
		if got := canCommitAt(c.lag); got != c.want {
			t.Errorf("canCommitAt(%v) = %v, want %v (shown as %ds)", c.lag, got, c.want, lagSeconds(c.lag))
		}
	}
}
