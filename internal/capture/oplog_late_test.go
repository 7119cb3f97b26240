package capture_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// eventLog collects what a running reader sends.
type eventLog struct {
	mu  sync.Mutex
	evs []migration.Event
}

func (l *eventLog) find(match func(migration.Event) bool) (migration.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if match(ev) {
			return ev, true
		}
	}
	return migration.Event{}, false
}

func (l *eventLog) wait(t *testing.T, what string, match func(migration.Event) bool) migration.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ev, ok := l.find(match); ok {
			return ev
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s within 20s", what)
	return migration.Event{}
}

func docEvent(ns string, id int32, field string, value any) func(migration.Event) bool {
	return func(ev migration.Event) bool {
		if ev.NS.String() != ns || ev.Op.IsDDL() || ev.Op == migration.OpNoop {
			return false
		}
		if got, ok := ev.DocumentKey.Lookup("_id").Int32OK(); !ok || got != id {
			return false
		}
		if field == "" {
			return true
		}
		v, err := ev.FullDocument.LookupErr(field)
		if err != nil {
			return false
		}
		s, _ := v.StringValueOK()
		return s == value
	}
}

// justBefore is a timestamp older than ts by one tick of the counter.
func justBefore(ts bson.Timestamp) bson.Timestamp {
	if ts.I > 0 {
		return bson.Timestamp{T: ts.T, I: ts.I - 1}
	}
	return bson.Timestamp{T: ts.T - 1, I: 1 << 30}
}

// lateEntry writes an entry into FerretDB's oplog the way FerretDB does,
// with a timestamp older than entries already read: what a reader sees when
// an entry becomes visible out of order.
func lateEntry(t *testing.T, c *mongo.Client, ts bson.Timestamp, op, ns string, o bson.D) {
	t.Helper()
	e := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "op", Value: op}, {Key: "ns", Value: ns}, {Key: "ts", Value: ts},
		{Key: "o", Value: o}, {Key: "t", Value: int64(1)}, {Key: "v", Value: int64(2)}, {Key: "wall", Value: time.Now()}}
	if _, err := c.Database("local").Collection("oplog.rs").InsertOne(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// An entry that shows up after newer ones were sent is sent when it is its
// document's newest state, and dropped when a newer state of the document,
// or a later drop of its collection, was already sent.
func TestOplogReaderLateEntries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := mongotest.StartSource(t)
	c := mongotest.Client(t, srv)
	coll := c.Database("app").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(0)}}); err != nil {
		t.Fatal(err)
	}
	r := ferretReader(c, nil)
	from, err := r.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan migration.Event, 64)
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx, from, out) }()
	var log eventLog
	go func() {
		for ev := range out {
			log.mu.Lock()
			log.evs = append(log.evs, ev)
			log.mu.Unlock()
		}
	}()

	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "one"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "two"}}}}); err != nil {
		t.Fatal(err)
	}
	two := log.wait(t, "update of _id 1 to v=two", docEvent("app.c", 1, "v", "two"))

	// A write right after late entries: once it is sent, they have been
	// read (they are within the overlap window of its poll).
	writeAfter := func(id int32) migration.Event {
		t.Helper()
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: "after"}}); err != nil {
			t.Fatal(err)
		}
		return log.wait(t, fmt.Sprintf("insert of _id %d", id), docEvent("app.c", id, "v", "after"))
	}

	// Late: an older state of _id 1, and the only state of _id 2.
	// (As inserts: FerretDB refuses the "$v" key of an update entry from a client.)
	lateEntry(t, c, justBefore(two.Pos.TS), "i", "app.c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "stale"}})
	lateEntry(t, c, justBefore(two.Pos.TS), "i", "app.c", bson.D{{Key: "_id", Value: int32(2)}, {Key: "v", Value: "late"}})
	writeAfter(3)
	log.wait(t, "late insert of _id 2 (its document's newest state)", docEvent("app.c", 2, "v", "late"))
	if ev, ok := log.find(docEvent("app.c", 1, "v", "stale")); ok {
		t.Errorf("a late, older state of _id 1 was sent after its newer one: %v", ev)
	}

	// A collection dropped after a late entry for it was written.
	d := c.Database("app").Collection("d")
	if _, err := d.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(1)}}); err != nil {
		t.Fatal(err)
	}
	log.wait(t, "insert into app.d", docEvent("app.d", 1, "", nil))
	if err := d.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	drop := log.wait(t, "drop of app.d", func(ev migration.Event) bool { return ev.Op == migration.OpDrop && ev.NS.String() == "app.d" })
	lateEntry(t, c, justBefore(drop.Pos.TS), "i", "app.d", bson.D{{Key: "_id", Value: int32(2)}})
	newest := writeAfter(5).Pos
	if ev, ok := log.find(docEvent("app.d", 2, "", nil)); ok {
		t.Errorf("a late insert into app.d was sent after the collection's drop: %v", ev)
	}

	// The commit point comes after everything sent so far, and a late
	// entry becoming visible in the poll that takes it is sent before the
	// no-op at the commit point (an applier's checkpoint may already be at
	// the newest entry: it must not count as drained before that entry).
	lateEntry(t, c, justBefore(newest.TS), "i", "app.c", bson.D{{Key: "_id", Value: int32(4)}, {Key: "v", Value: "late at commit"}})
	cp, err := r.(*capture.OplogReader).CommitPoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !newest.Before(cp) {
		t.Fatalf("CommitPoint = %v, want after the newest entry %v", cp.TS, newest.TS)
	}
	log.wait(t, "no-op at the commit point", func(ev migration.Event) bool { return ev.Op == migration.OpNoop && ev.Pos.TS == cp.TS })
	log.mu.Lock()
	lateAt, noopAt := -1, -1
	for i, ev := range log.evs {
		if docEvent("app.c", 4, "v", "late at commit")(ev) {
			lateAt = i
		}
		if ev.Op == migration.OpNoop && ev.Pos.TS == cp.TS && noopAt < 0 {
			noopAt = i
		}
	}
	log.mu.Unlock()
	if lateAt < 0 || lateAt > noopAt {
		t.Errorf("late entry sent at %d, the commit point's no-op at %d: want the entry first", lateAt, noopAt)
	}

	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// A commit point asked for while a poll is running aborts that poll (it
// started before the request and cannot serve it) and is served by the
// next one: every write acknowledged before the request is sent before the
// no-op at the commit point, while other callers wait in Latest.
func TestOplogReaderCommitPointAbortsRunningPoll(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := mongotest.StartSource(t)
	c := mongotest.Client(t, srv)
	// A few thousand entries, so a poll takes long enough to be caught running.
	pad := make([]any, 0, 2000)
	for i := range 2000 {
		pad = append(pad, bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("x", 1000)}})
	}
	if _, err := c.Database("pad").Collection("p").InsertMany(ctx, pad); err != nil {
		t.Fatal(err)
	}
	r := ferretReader(c, nil)
	from, err := r.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan migration.Event, 64)
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx, from, out) }()
	var log eventLog
	go func() {
		for ev := range out {
			log.mu.Lock()
			log.evs = append(log.evs, ev)
			log.mu.Unlock()
		}
	}()
	latestDone := make(chan error, 1)
	go func() { // Latest callers meanwhile, as the engine's lag readings were
		for ctx.Err() == nil {
			if _, err := r.Latest(ctx); err != nil && ctx.Err() == nil {
				latestDone <- err
				return
			}
		}
		latestDone <- nil
	}()
	coll := c.Database("app").Collection("c")
	for i := range int32(4) {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: "before commit"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i) * 70 * time.Millisecond) // land at different moments of a poll
		cp, err := r.(*capture.OplogReader).CommitPoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		log.wait(t, "no-op at the commit point", func(ev migration.Event) bool { return ev.Op == migration.OpNoop && ev.Pos.TS == cp.TS })
		log.mu.Lock()
		insAt, noopAt := -1, -1
		for j, ev := range log.evs {
			if docEvent("app.c", i, "v", "before commit")(ev) && insAt < 0 {
				insAt = j
				if !ev.Pos.Before(cp) {
					t.Errorf("insert %d at %v, not before the commit point %v", i, ev.Pos.TS, cp.TS)
				}
			}
			if ev.Op == migration.OpNoop && ev.Pos.TS == cp.TS && noopAt < 0 {
				noopAt = j
			}
		}
		log.mu.Unlock()
		if insAt < 0 || insAt > noopAt {
			t.Fatalf("commit %d: insert sent at %d, the commit point's no-op at %d: want the insert first", i, insAt, noopAt)
		}
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if err := <-latestDone; err != nil {
		t.Fatalf("Latest: %v", err)
	}
}
