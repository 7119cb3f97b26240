package apply_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/apply"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

var ns = migration.Namespace{DB: "app", Coll: "c"}

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func key(t *testing.T, id int32) bson.Raw { return raw(t, bson.D{{Key: "_id", Value: id}}) }

func pos(i uint32) migration.Position { return migration.Position{TS: bson.Timestamp{T: 1000, I: i}} }

// events is a sequence touching several documents, with a DDL barrier.
func events(t *testing.T) []migration.Event {
	var evs []migration.Event
	add := func(ev migration.Event) {
		ev.Pos = pos(uint32(len(evs) + 1))
		if ev.NS.IsZero() {
			ev.NS = ns
		}
		evs = append(evs, ev)
	}
	for i := int32(1); i <= 20; i++ {
		add(migration.Event{Op: migration.OpInsert, DocumentKey: key(t, i), FullDocument: raw(t, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}, {Key: "tmp", Value: true}})})
	}
	for i := int32(1); i <= 20; i += 2 {
		add(migration.Event{Op: migration.OpUpdate, DocumentKey: key(t, i), Update: &migration.UpdateDescription{
			UpdatedFields: raw(t, bson.D{{Key: "n", Value: i * 10}}), RemovedFields: []string{"tmp"}}})
	}
	add(migration.Event{Op: migration.OpCreateIndexes, Indexes: []bson.Raw{raw(t, bson.D{{Key: "key", Value: bson.D{{Key: "n", Value: 1}}}, {Key: "name", Value: "n_1"}})}})
	for i := int32(2); i <= 20; i += 4 {
		add(migration.Event{Op: migration.OpDelete, DocumentKey: key(t, i)})
	}
	add(migration.Event{Op: migration.OpReplace, DocumentKey: key(t, 4), FullDocument: raw(t, bson.D{{Key: "_id", Value: int32(4)}, {Key: "r", Value: "replaced"}})})
	// FerretDB-style full-image update.
	add(migration.Event{Op: migration.OpUpdate, DocumentKey: key(t, 3), FullDocument: raw(t, bson.D{{Key: "_id", Value: int32(3)}, {Key: "img", Value: true}})})
	// Create and drop of another collection, with data in between.
	other := migration.Namespace{DB: "app", Coll: "tmp"}
	add(migration.Event{Op: migration.OpCreate, NS: other})
	add(migration.Event{Op: migration.OpInsert, NS: other, DocumentKey: key(t, 1), FullDocument: raw(t, bson.D{{Key: "_id", Value: int32(1)}})})
	add(migration.Event{Op: migration.OpDrop, NS: other})
	add(migration.Event{Op: migration.OpNoop})
	return evs
}

func want() map[int32]bson.D {
	m := map[int32]bson.D{}
	for i := int32(1); i <= 20; i++ {
		m[i] = bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}, {Key: "tmp", Value: true}}
		if i%2 == 1 {
			m[i] = bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i * 10}}
		}
	}
	for i := int32(2); i <= 20; i += 4 {
		delete(m, i)
	}
	m[4] = bson.D{{Key: "_id", Value: int32(4)}, {Key: "r", Value: "replaced"}}
	m[3] = bson.D{{Key: "_id", Value: int32(3)}, {Key: "img", Value: true}}
	return m
}

func run(t *testing.T, p *apply.Pool, evs []migration.Event) {
	t.Helper()
	in := make(chan migration.Event)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background(), in) }()
	for _, ev := range evs {
		in <- ev
	}
	close(in)
	if err := <-errc; err != nil {
		t.Fatalf("Pool.Run: %v", err)
	}
}

func contents(t *testing.T, c *mongo.Client, ns migration.Namespace) map[int32]bson.D {
	t.Helper()
	cur, err := c.Database(ns.DB).Collection(ns.Coll).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.D
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	m := map[int32]bson.D{}
	for _, d := range docs {
		m[d[0].Value.(int32)] = d
	}
	return m
}

func TestPoolAppliesInOrderAndReplaysIdempotently(t *testing.T) {
	t.Parallel()
	for _, mode := range []apply.Mode{apply.ModeInIDs, apply.ModeBulk} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dst := mongotest.StartDestination(t)
			c := mongotest.Client(t, dst)
			evs := events(t)
			p := apply.New(c, apply.Options{Workers: 3, BatchSize: 4, Mode: mode, TickEvery: 5 * time.Millisecond}, nil)
			run(t, p, evs)
			if diff := cmp.Diff(want(), contents(t, c, ns)); diff != "" {
				t.Fatalf("destination (-want +got):\n%s", diff)
			}
			if got := p.Checkpoint(); got.TS != evs[len(evs)-1].Pos.TS {
				t.Errorf("Checkpoint = %v, want the last event's %v", got.TS, evs[len(evs)-1].Pos.TS)
			}
			if got, want := p.Applied(), int64(len(evs)-1); got != want {
				t.Errorf("Applied = %d, want %d", got, want)
			}
			names, err := c.Database("app").ListCollectionNames(context.Background(), bson.D{{Key: "name", Value: "tmp"}})
			if err != nil || len(names) != 0 {
				t.Errorf("dropped collection app.tmp still there: %v %v", names, err)
			}
			// Replaying any suffix converges to the same state.
			for _, from := range []int{0, 15, 31, 40} {
				run(t, apply.New(c, apply.Options{Workers: 2, BatchSize: 3, Mode: mode}, nil), evs[from:])
				if diff := cmp.Diff(want(), contents(t, c, ns)); diff != "" {
					t.Fatalf("after replaying from event %d (-want +got):\n%s", from, diff)
				}
			}
		})
	}
}

// An update whose target is missing on the destination takes the
// document's current state from the source.
func TestPoolFallsBackToSourceState(t *testing.T) {
	t.Parallel()
	src, dst := mongotest.StartSource(t), mongotest.StartDestination(t)
	sc, dc := mongotest.Client(t, src), mongotest.Client(t, dst)
	ctx := context.Background()
	if _, err := sc.Database("app").Collection("c").InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: int32(1)}, {Key: "now", Value: "source"}},
	}); err != nil {
		t.Fatal(err)
	}
	p := apply.New(dc, apply.Options{Source: sc}, nil)
	run(t, p, []migration.Event{
		{Op: migration.OpUpdate, NS: ns, Pos: pos(1), DocumentKey: key(t, 1), Update: &migration.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "x", Value: 1}})}},
		{Op: migration.OpUpdate, NS: ns, Pos: pos(2), DocumentKey: key(t, 2), Update: &migration.UpdateDescription{UpdatedFields: raw(t, bson.D{{Key: "x", Value: 1}})}},
	})
	want := map[int32]bson.D{1: {{Key: "_id", Value: int32(1)}, {Key: "now", Value: "source"}}}
	if diff := cmp.Diff(want, contents(t, dc, ns)); diff != "" {
		t.Fatalf("destination (-want +got):\n%s", diff)
	}
}

// In ModeInIDs a batch whose _ids are all strings or ObjectIds is deleted
// with per-_id statements (indexed on FerretDB), any other with one $in;
// both end in the same state, mixed batches included.
func TestInIDsDeletesByKeyOrIn(t *testing.T) {
	t.Parallel()
	dst := mongotest.StartDestination(t)
	c := mongotest.Client(t, dst)
	oid := bson.NewObjectID()
	ids := []any{oid, "s1", "s2", int64(7)}
	var evs []migration.Event
	add := func(op migration.Op, id any, doc bson.D) {
		ev := migration.Event{Op: op, NS: ns, Pos: pos(uint32(len(evs) + 1)), DocumentKey: raw(t, bson.D{{Key: "_id", Value: id}})}
		if doc != nil {
			ev.FullDocument = raw(t, append(bson.D{{Key: "_id", Value: id}}, doc...))
		}
		evs = append(evs, ev)
	}
	for _, id := range ids {
		add(migration.OpInsert, id, bson.D{{Key: "v", Value: 1}})
	}
	add(migration.OpUpdate, oid, bson.D{{Key: "v", Value: 2}})
	add(migration.OpDelete, "s1", nil)
	add(migration.OpReplace, "s2", bson.D{{Key: "w", Value: true}})
	add(migration.OpDelete, int64(7), nil)
	wantDocs := []bson.D{
		{{Key: "_id", Value: oid}, {Key: "v", Value: int32(2)}},
		{{Key: "_id", Value: "s2"}, {Key: "w", Value: true}},
	}
	for _, batch := range []int{1, 2, 8} { // keyed-only batches, and mixed ones with the int64 _id
		if err := c.Database(ns.DB).Collection(ns.Coll).Drop(context.Background()); err != nil {
			t.Fatal(err)
		}
		run(t, apply.New(c, apply.Options{Workers: 1, BatchSize: batch, Mode: apply.ModeInIDs, TickEvery: 5 * time.Millisecond}, nil), evs)
		run(t, apply.New(c, apply.Options{Workers: 1, BatchSize: batch, Mode: apply.ModeInIDs}, nil), evs[3:]) // a replayed suffix
		cur, err := c.Database(ns.DB).Collection(ns.Coll).Find(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var got []bson.D
		if err := cur.All(context.Background(), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantDocs, got, cmp.Comparer(func(a, b bson.ObjectID) bool { return a == b })); diff != "" {
			t.Errorf("batch size %d: destination (-want +got):\n%s", batch, diff)
		}
	}
}

// TestInIDsLeavesReplayedDocumentsAlone: events at or before
// Options.Replayed may be replays the source's oplog need not keep. A
// document the destination already holds exactly as such an event leaves it
// is neither deleted nor inserted again (a crash between the two would
// leave it missing, and no replay could restore it); one that differs, and
// every event after Replayed, is written as usual. The destination is a
// server with an oplog, which shows every delete and insert the pool sent.
func TestInIDsLeavesReplayedDocumentsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := mongotest.Client(t, mongotest.StartSource(t))
	doc := func(id int32, v string) bson.Raw {
		return raw(t, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: v}})
	}
	coll := c.Database(ns.DB).Collection(ns.Coll)
	for i := int32(1); i <= 10; i++ {
		if _, err := coll.InsertOne(ctx, doc(i, "copied")); err != nil {
			t.Fatal(err)
		}
	}
	seeded := newestOplogTS(t, c)
	var evs []migration.Event
	for i := int32(1); i <= 10; i++ {
		evs = append(evs, migration.Event{Op: migration.OpInsert, NS: ns, Pos: pos(uint32(i)), DocumentKey: key(t, i), FullDocument: doc(i, "copied")})
	}
	evs = append(evs,
		// A replayed change the copy did not see, and one after the replay window.
		migration.Event{Op: migration.OpUpdate, NS: ns, Pos: pos(10), DocumentKey: key(t, 3), FullDocument: doc(3, "late")},
		migration.Event{Op: migration.OpUpdate, NS: ns, Pos: pos(11), DocumentKey: key(t, 7), FullDocument: doc(7, "new")})
	run(t, apply.New(c, apply.Options{Workers: 1, BatchSize: 100, Mode: apply.ModeInIDs, Replayed: pos(10), TickEvery: 5 * time.Millisecond}, nil), evs)

	got := contents(t, c, ns)
	for i := int32(1); i <= 10; i++ {
		v := "copied"
		switch i {
		case 3:
			v = "late"
		case 7:
			v = "new"
		}
		if want := (bson.D{{Key: "_id", Value: i}, {Key: "v", Value: v}}); !cmp.Equal(got[i], want) {
			t.Errorf("document %d = %v, want %v", i, got[i], want)
		}
	}
	cur, err := c.Database("local").Collection("oplog.rs").Find(ctx, bson.D{{Key: "ns", Value: ns.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		TS bson.Timestamp `bson:"ts"`
		Op string         `bson:"op"`
		O  struct {
			ID int32 `bson:"_id"`
		} `bson:"o"`
	}
	if err := cur.All(ctx, &entries); err != nil {
		t.Fatal(err)
	}
	written := map[int32][]string{}
	for _, e := range entries {
		if migration.CompareTS(e.TS, seeded) > 0 {
			written[e.O.ID] = append(written[e.O.ID], e.Op)
		}
	}
	if want := map[int32][]string{3: {"d", "i"}, 7: {"d", "i"}}; !cmp.Equal(written, want) {
		t.Errorf("writes the pool sent, by _id = %v, want %v: only the documents that differ", written, want)
	}
}

func newestOplogTS(t *testing.T, c *mongo.Client) bson.Timestamp {
	t.Helper()
	cur, err := c.Database("local").Collection("oplog.rs").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		TS bson.Timestamp `bson:"ts"`
	}
	if err := cur.All(context.Background(), &entries); err != nil {
		t.Fatal(err)
	}
	var newest bson.Timestamp
	for _, e := range entries {
		newest = migration.MaxTS(newest, e.TS)
	}
	return newest
}
