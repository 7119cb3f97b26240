package verify

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// unconnected returns a client that is never used: Observe and the changed
// sets touch no server.
func unconnected(t *testing.T) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(t.Context()) })
	return c
}

func newTestLive(t *testing.T, memory int, passLimit int64) *Live {
	t.Helper()
	c := unconnected(t)
	l, err := NewLive(LiveOptions{Options: Options{Source: c, Destination: c, MemoryEntries: memory, TempDir: t.TempDir()},
		Lag: func() time.Duration { return 0 }, PassLimit: passLimit}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func event(op migration.Op, ns migration.Namespace, id int32, ts uint32) migration.Event {
	key, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	return migration.Event{Op: op, NS: ns, DocumentKey: key, Pos: migration.Position{TS: bson.Timestamp{T: ts}}}
}

func keysOf(t *testing.T, k *keySet) []string {
	t.Helper()
	f, err := newRecordFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	if err := k.writeTo(f); err != nil {
		t.Fatal(err)
	}
	var out []string
	if err := f.each(func(_ byte, p []byte) error { out = append(out, idString(p)); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestLiveRecordsChangesAfterTheMark: events before a namespace's mark are
// not recorded (the comparison waits until they are applied), events after
// it are, each _id once however often it changes and even after spilling;
// the mark returns the newest position observed, which the comparison
// waits for.
func TestLiveRecordsChangesAfterTheMark(t *testing.T) {
	t.Parallel()
	l := newTestLive(t, 2, 100)
	ns := migration.Namespace{DB: "app", Coll: "items"}
	l.Observe(event(migration.OpInsert, ns, 1, 10))
	st, _, _, at := l.mark(ns)
	if at.TS.T != 10 {
		t.Errorf("mark at %v, want the newest observed position (10)", at.TS)
	}
	for i, id := range []int32{2, 3, 2, 4, 3, 5} {
		l.Observe(event(migration.OpUpdate, ns, id, uint32(11+i)))
	}
	l.Observe(event(migration.OpDelete, migration.Namespace{DB: "app", Coll: "other"}, 9, 20))
	want := []string{`{"$numberInt":"2"}`, `{"$numberInt":"3"}`, `{"$numberInt":"4"}`, `{"$numberInt":"5"}`}
	if got := keysOf(t, st.changed); !slices.Equal(got, want) {
		t.Errorf("changed set %v, want %v (1 was before the mark; other namespaces are not recorded)", got, want)
	}
	if st.changed.spill == nil {
		t.Error("4 keys with MemoryEntries 2 did not spill")
	}
}

// TestLiveDDLVoidsPasses: a pass is voided by the catalog changes that can
// change documents (rename both ways, drop, dropDatabase, an overgrown
// set), not by index changes.
func TestLiveDDLVoidsPasses(t *testing.T) {
	t.Parallel()
	a, b, c := migration.Namespace{DB: "app", Coll: "a"}, migration.Namespace{DB: "app", Coll: "b"}, migration.Namespace{DB: "other", Coll: "c"}
	done := func(l *Live, nss ...migration.Namespace) {
		for _, ns := range nss {
			st, _, _, _ := l.mark(ns)
			st.done = true
		}
	}
	for _, tc := range []struct {
		name   string
		ev     migration.Event
		voided []migration.Namespace
	}{
		{"createIndexes", migration.Event{Op: migration.OpCreateIndexes, NS: a}, nil},
		{"dropIndexes", migration.Event{Op: migration.OpDropIndexes, NS: a}, nil},
		{"rename", migration.Event{Op: migration.OpRename, NS: a, To: b}, []migration.Namespace{a, b}},
		{"drop", migration.Event{Op: migration.OpDrop, NS: b}, []migration.Namespace{b}},
		{"dropDatabase", migration.Event{Op: migration.OpDropDatabase, NS: migration.Namespace{DB: "app"}}, []migration.Namespace{a, b}},
		{"invalidate", migration.Event{Op: migration.OpInvalidate}, []migration.Namespace{a, b, c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLive(t, 10, 100)
			done(l, a, b, c)
			l.Observe(tc.ev)
			for _, ns := range []migration.Namespace{a, b, c} {
				if want := !slices.Contains(tc.voided, ns); l.ns[ns].done != want {
					t.Errorf("%s after %s: done %v, want %v", ns, tc.ev.Op, l.ns[ns].done, want)
				}
			}
		})
	}
	l := newTestLive(t, 10, 3)
	done(l, a)
	for id := range int32(4) {
		l.Observe(event(migration.OpUpdate, a, id, 1))
	}
	if st := l.ns[a]; st.done || st.changed != nil || st.why == "" {
		t.Errorf("a set over PassLimit: done %v, set %v, why %q; want the pass voided with a reason", st.done, st.changed, st.why)
	}
}

// TestPaceCutsShortAPauseThatDoesNotLowerTheLag: with the lag held above
// PauseLag by something else, a pause ends after PauseMax and work then
// goes on slowed (no pause) for PauseMax; lag falling below SlowLag ends a
// pause at once; Hold pauses whatever the lag until the context ends.
func TestPaceCutsShortAPauseThatDoesNotLowerTheLag(t *testing.T) {
	t.Parallel()
	c := unconnected(t)
	var lag atomic.Int64
	lag.Store(int64(10 * time.Second))
	l, err := NewLive(LiveOptions{Options: Options{Source: c, Destination: c, TempDir: t.TempDir()},
		Lag: func() time.Duration { return time.Duration(lag.Load()) }, PauseMax: 500 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	took := func() time.Duration {
		t.Helper()
		began := time.Now()
		if err := l.pace(ctx); err != nil {
			t.Fatal(err)
		}
		return time.Since(began)
	}
	if d := took(); d < 500*time.Millisecond || d > 5*time.Second {
		t.Errorf("first pace with the lag stuck at 10 s took %s, want PauseMax (500 ms) and a slowdown", d)
	}
	if st := l.Stats(); st.PausesCutShort != 1 || st.Pauses != 1 {
		t.Errorf("stats %+v, want 1 pause, cut short", st)
	}
	if d := took(); d >= 400*time.Millisecond {
		t.Errorf("pace right after a pause cut short took %s, want only the 50 ms slowdown", d)
	}
	time.Sleep(600 * time.Millisecond) // PauseMax later it may pause again
	go func() { time.Sleep(300 * time.Millisecond); lag.Store(int64(time.Second)) }()
	if d := took(); d < 250*time.Millisecond || d >= 2*time.Second {
		t.Errorf("pace while the lag falls below SlowLag after 300 ms took %s", d)
	}
	if st := l.Stats(); st.PausesCutShort != 1 || st.Pauses != 2 {
		t.Errorf("stats %+v, want 2 pauses, 1 cut short", st)
	}
	l.Hold()
	hctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := l.pace(hctx); err == nil || time.Since(began) < 1400*time.Millisecond {
		t.Errorf("pace while held returned %v after %s, want the context's end", err, time.Since(began))
	}
}

// TestPaceRunsFullSpeedOnAQuietSource: with no change event for
// QuietAfter, a lag held above PauseLag is only the age of the reader's
// knowledge (nothing waits to be applied): pace neither pauses nor slows;
// a change observed restores the pause, which ends once the source is
// quiet again.
func TestPaceRunsFullSpeedOnAQuietSource(t *testing.T) {
	t.Parallel()
	c := unconnected(t)
	l, err := NewLive(LiveOptions{Options: Options{Source: c, Destination: c, TempDir: t.TempDir()},
		Lag: func() time.Duration { return 10 * time.Second }, PauseMax: 10 * time.Second, QuietAfter: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	took := func() time.Duration {
		t.Helper()
		began := time.Now()
		if err := l.pace(ctx); err != nil {
			t.Fatal(err)
		}
		return time.Since(began)
	}
	time.Sleep(350 * time.Millisecond)
	if d := took(); d >= 40*time.Millisecond {
		t.Errorf("pace on a quiet source with the lag at 10 s took %s, want no pause and no slowdown", d)
	}
	if st := l.Stats(); st.Pauses != 0 {
		t.Errorf("stats %+v, want no pause on a quiet source", st)
	}
	l.Observe(migration.Event{Op: migration.OpInsert, NS: migration.Namespace{DB: "d", Coll: "c"},
		DocumentKey: mustRaw(t, bson.D{{Key: "_id", Value: 1}})})
	if d := took(); d < 250*time.Millisecond || d >= 5*time.Second {
		t.Errorf("pace after a change with the lag at 10 s took %s, want a pause until the source is quiet again (300 ms)", d)
	}
	if st := l.Stats(); st.Pauses != 1 || st.PausesCutShort != 0 {
		t.Errorf("stats %+v, want 1 pause, not cut short", st)
	}
}

// TestPaceCountsWallTime: workers that pause together for one lag spike
// count one pause, and its seconds once, not once per worker.
func TestPaceCountsWallTime(t *testing.T) {
	t.Parallel()
	c := unconnected(t)
	var lag atomic.Int64
	lag.Store(int64(10 * time.Second))
	l, err := NewLive(LiveOptions{Options: Options{Source: c, Destination: c, TempDir: t.TempDir()},
		Lag: func() time.Duration { return time.Duration(lag.Load()) }, PauseMax: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Observe(migration.Event{Op: migration.OpInsert, NS: migration.Namespace{DB: "d", Coll: "c"},
		DocumentKey: mustRaw(t, bson.D{{Key: "_id", Value: 1}})}) // not a quiet source
	began := time.Now()
	time.AfterFunc(800*time.Millisecond, func() { lag.Store(int64(time.Second)) })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := l.pace(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began).Seconds()
	st := l.Stats()
	if st.Pauses != 1 {
		t.Errorf("%d pauses for one lag spike paced by 4 workers, want 1", st.Pauses)
	}
	if st.PausedSeconds <= 0 || st.PausedSeconds+st.SlowedSeconds > elapsed {
		t.Errorf("paused %.2f s and slowed %.2f s in %.2f s of wall time: counted per worker, not once", st.PausedSeconds, st.SlowedSeconds, elapsed)
	}
}

func mustRaw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
