package capture

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

func ts(t, i uint32) bson.Timestamp { return bson.Timestamp{T: t, I: i} }

func ferretRunOpts() OplogOptions {
	return OplogOptions{Filter: InScope(""), FullImageUpdates: true, Settle: 2 * time.Second, Window: 2 * time.Second}
}

// insertEntry is a FerretDB-shaped insert of {_id: id} into app.c at at.
func insertEntry(t *testing.T, at bson.Timestamp, id int32) oplogEntry {
	oid := bson.NewObjectID()
	return oplogEntry{ID: bson.RawValue{Type: bson.TypeObjectID, Value: oid[:]}, Op: "i", NS: "app.c", TS: at,
		Wall: time.Unix(int64(at.T), 0), O: raw(t, bson.D{{Key: "_id", Value: id}})}
}

func TestOplogRunAdmit(t *testing.T) {
	s := newOplogRun(ferretRunOpts(), migration.Position{TS: ts(100, 0)})
	e := insertEntry(t, ts(101, 1), 1)
	if keep, late := s.admit(e); !keep || late {
		t.Fatalf("new entry: keep %v late %v, want kept, not late", keep, late)
	}
	if keep, _ := s.admit(e); keep {
		t.Fatal("the same entry read again by the overlap window was kept")
	}
	if keep, _ := s.admit(insertEntry(t, ts(99, 5), 2)); keep {
		t.Fatal("an entry before from was kept")
	}
	s.released = ts(105, 0)
	if keep, late := s.admit(insertEntry(t, ts(103, 1), 3)); !keep || !late {
		t.Fatalf("entry older than the released boundary: keep %v late %v, want kept and late", keep, late)
	}

	// An ordered oplog (MongoDB) resends nothing at or before released after
	// the first poll, and dedupes nothing across polls.
	o := newOplogRun(OplogOptions{Filter: InScope("")}, migration.Position{TS: ts(100, 0)})
	mongoEntry := oplogEntry{Op: "n", TS: ts(100, 0)}
	if keep, _ := o.admit(mongoEntry); !keep {
		t.Fatal("first poll: the entry at from was not kept (at least once at the boundary)")
	}
	o.released, o.first = ts(100, 5), false
	o.forget()
	if keep, _ := o.admit(oplogEntry{Op: "n", TS: ts(100, 3)}); keep {
		t.Fatal("ordered oplog: an entry at or before released was kept after the first poll")
	}
}

func TestOplogRunBoundary(t *testing.T) {
	now := time.Unix(1000, 0)
	eager := newOplogRun(ferretRunOpts(), migration.Position{TS: ts(100, 0)})
	eager.newest = ts(110, 4)
	if b := eager.boundary(now); b != ts(110, 4) {
		t.Fatalf("eager boundary = %v, want the newest entry read", b)
	}

	opts := ferretRunOpts()
	opts.FullImageUpdates = false // holes without full images: wait for Settle
	s := newOplogRun(opts, migration.Position{TS: ts(100, 0)})
	s.newest = ts(105, 1)
	if b := s.boundary(now); b != ts(100, 0) {
		t.Fatalf("settle: boundary right after the read = %v, want the released position", b)
	}
	s.newest = ts(107, 1)
	if b := s.boundary(now.Add(time.Second)); b != ts(100, 0) {
		t.Fatalf("settle: boundary 1 s after = %v, want still released", b)
	}
	if b := s.boundary(now.Add(2 * time.Second)); b != ts(105, 1) {
		t.Fatalf("settle: boundary 2 s after the first read = %v, want what it saw", b)
	}
	if len(s.marks) != 2 {
		t.Fatalf("marks kept: %d, want the 2 younger than Settle", len(s.marks))
	}
}

func TestOplogRunRelease(t *testing.T) {
	ctx := context.Background()
	s := newOplogRun(ferretRunOpts(), migration.Position{TS: ts(100, 0)})
	for _, e := range []oplogEntry{insertEntry(t, ts(103, 2), 1), insertEntry(t, ts(101, 1), 2), insertEntry(t, ts(104, 1), 1)} {
		if err := s.take(e); err != nil {
			t.Fatal(err)
		}
	}
	out := make(chan migration.Event, 16)
	var sent []bson.Timestamp
	if err := s.release(ctx, out, ts(103, 9), after(ts(104, 1)), time.Now(), func(ev migration.Event) { sent = append(sent, ev.Pos.TS) }); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []bson.Timestamp
	var ops []migration.Op
	for ev := range out {
		got, ops = append(got, ev.Pos.TS), append(ops, ev.Op)
	}
	want := []bson.Timestamp{ts(101, 1), ts(103, 2), ts(103, 9), ts(104, 2)}
	if len(got) != len(want) {
		t.Fatalf("sent %v (%v), want %v", got, ops, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sent %v (%v), want %v: in order, a no-op at the boundary, then one at the commit point", got, ops, want)
		}
	}
	if ops[2] != migration.OpNoop || ops[3] != migration.OpNoop || len(sent) != 2 {
		t.Fatalf("ops %v, changes noted %v: want 2 changes then 2 no-ops", ops, sent)
	}
	if len(s.pending) != 1 || s.pending[0].Pos.TS != ts(104, 1) || s.released != ts(103, 9) {
		t.Fatalf("pending %d, released %v: the entry after the boundary must wait", len(s.pending), s.released)
	}

	// A late entry older than a state already sent for its document is dropped.
	if err := s.take(insertEntry(t, ts(102, 1), 1)); err != nil {
		t.Fatal(err)
	}
	out = make(chan migration.Event, 16)
	if err := s.release(ctx, out, ts(104, 1), bson.Timestamp{}, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	close(out)
	for ev := range out {
		if ev.Pos.TS == ts(102, 1) {
			t.Fatal("a late entry older than the state sent for its document was sent")
		}
	}
}

func TestOplogRunForget(t *testing.T) {
	s := newOplogRun(ferretRunOpts(), migration.Position{TS: ts(100, 0)})
	old, recent := insertEntry(t, ts(101, 1), 1), insertEntry(t, ts(109, 1), 2)
	s.admit(old)
	s.admit(recent)
	s.released = ts(110, 0)
	s.forget() // horizon 110 − (2 + 2) = 106
	if _, ok := s.seen[entryKey(old)]; ok {
		t.Fatal("an entry older than the overlap window is still remembered")
	}
	if _, ok := s.seen[entryKey(recent)]; !ok {
		t.Fatal("an entry inside the overlap window was forgotten: a later poll would send it again")
	}
}

func TestLagTrack(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var l lagTrack
	l.offset = 2 * time.Second // the source's clock is 2 s ahead
	if got := l.lag(migration.Position{}, t0); got != 0 {
		t.Fatalf("never started: lag %v, want 0", got)
	}
	// Started at a position made 30 s ago (source 972 = local 970): until
	// the first poll, all since then may be unread.
	l.started(ts(972, 0), t0)
	if got := l.lag(migration.Position{TS: ts(972, 0)}, t0); got != 30*time.Second {
		t.Fatalf("before the first poll: lag %v, want 30s since the start position", got)
	}
	// Two changes made at local 1000.0 and 1000.5 (source 1002.0, 1002.5).
	l.sent(ts(1002, 1), t0.Add(2*time.Second), t0.Add(time.Second))
	l.sent(ts(1002, 2), t0.Add(2500*time.Millisecond), t0.Add(time.Second))
	l.polled(t0.Add(time.Second))
	if got := l.lag(migration.Position{TS: ts(1001, 9)}, t0.Add(3*time.Second)); got != 3*time.Second {
		t.Fatalf("both unapplied: lag %v, want 3s (the oldest made at local 1000)", got)
	}
	if got := l.lag(migration.Position{TS: ts(1002, 1)}, t0.Add(3*time.Second)); got != 2500*time.Millisecond {
		t.Fatalf("first applied: lag %v, want 2.5s", got)
	}
	if got := l.lag(migration.Position{TS: ts(1002, 2)}, t0.Add(3*time.Second)); got != 2*time.Second {
		t.Fatalf("all applied: lag %v, want 2s since the last read started", got)
	}
	l.polled(t0.Add(3500 * time.Millisecond))
	if got := l.lag(migration.Position{TS: ts(1002, 2)}, t0.Add(4*time.Second)); got != 500*time.Millisecond {
		t.Fatalf("all applied, a later read found nothing: lag %v, want 0.5s (the age of what the reader knows)", got)
	}
	if len(l.buckets) != 0 {
		t.Fatalf("%d buckets kept after everything was applied", len(l.buckets))
	}
	l.sent(ts(2000, 1), time.Time{}, t0.Add(5*time.Second))       // a catalog event: no wall, noticed at now
	l.sent(ts(2000, 2), t0.Add(time.Hour), t0.Add(5*time.Second)) // a wall "from the future" (offset measured wrong) counts from when it was sent
	if got := l.lag(migration.Position{TS: ts(1002, 2)}, t0.Add(6*time.Second)); got != time.Second {
		t.Fatalf("catalog event noticed 1 s ago: lag %v, want 1s", got)
	}
	if got := l.lag(migration.Position{TS: ts(2000, 1)}, t0.Add(6*time.Second)); got != time.Second {
		t.Fatalf("a change whose wall is ahead of when it was sent: lag %v, want 1s since it was sent", got)
	}
}
