package verify

import (
	"slices"
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
