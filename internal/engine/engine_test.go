package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// doc builds a FerretDB-safe document of varied shape with _id first.
func doc(i int) bson.D {
	d := bson.D{{Key: "_id", Value: i}, {Key: "n", Value: int32(i)}, {Key: "s", Value: fmt.Sprintf("name-%05d", i)}}
	switch i % 5 {
	case 0:
		d = append(d, bson.E{Key: "when", Value: bson.DateTime(1700000000000 + int64(i))}, bson.E{Key: "big", Value: int64(i) << 40})
	case 1:
		d = append(d, bson.E{Key: "sub", Value: bson.D{{Key: "a", Value: 1.5}, {Key: "b", Value: bson.A{"x", int32(2), true}}}})
	case 2:
		d = append(d, bson.E{Key: "bin", Value: bson.Binary{Subtype: 0, Data: []byte{0, 1, 2, byte(i)}}}, bson.E{Key: "nil", Value: nil})
	case 3:
		d = append(d, bson.E{Key: "oid", Value: bson.NewObjectID()}, bson.E{Key: "ts", Value: bson.Timestamp{T: 5, I: uint32(i)}})
	case 4:
		d = append(d, bson.E{Key: "pad", Value: string(bytes.Repeat([]byte{'p'}, 200+i%300))}, bson.E{Key: "re", Value: bson.Regex{Pattern: "^a", Options: "i"}})
	}
	return d
}

func seed(t testing.TB, c *mongo.Client, ns migration.Namespace, from, n int) {
	t.Helper()
	docs := make([]any, 0, n)
	for i := from; i < from+n; i++ {
		docs = append(docs, doc(i))
	}
	if _, err := c.Database(ns.DB).Collection(ns.Coll).InsertMany(context.Background(), docs); err != nil {
		t.Fatalf("seed %s: %v", ns, err)
	}
}

// rawDocs returns every document of ns keyed by its raw _id.
func rawDocs(t testing.TB, c *mongo.Client, ns migration.Namespace) map[string]string {
	t.Helper()
	cur, err := c.Database(ns.DB).Collection(ns.Coll).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatalf("read %s: %v", ns, err)
	}
	out := map[string]string{}
	for cur.Next(context.Background()) {
		id := cur.Current.Lookup("_id")
		out[string(id.Value)] = string(cur.Current)
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("read %s: %v", ns, err)
	}
	return out
}

// assertSame compares every document of each namespace byte for byte.
func assertSame(t testing.TB, src, dst *mongo.Client, nss ...migration.Namespace) {
	t.Helper()
	for _, ns := range nss {
		want, got := rawDocs(t, src, ns), rawDocs(t, dst, ns)
		if len(want) == 0 {
			t.Fatalf("%s: source is empty; the test seeds nothing", ns)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s differs (-source +destination), %d vs %d docs:\n%.2000s", ns, len(want), len(got), diff)
		}
	}
}

func collNames(t testing.TB, c *mongo.Client, db string) []string {
	t.Helper()
	names, err := c.Database(db).ListCollectionNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func runEngine(t testing.TB, opts Options) (*Engine, error) {
	t.Helper()
	opts.StopAfterCopy = true
	e, err := New(opts, testLogger(t))
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return e, e.Run(ctx)
}

func TestCopyEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)

	a, b, capped := migration.Namespace{DB: "shop", Coll: "orders"}, migration.Namespace{DB: "crm", Coll: "people"}, migration.Namespace{DB: "shop", Coll: "log"}
	seed(t, src, a, 0, 3000)
	seed(t, src, b, 0, 500)
	if err := src.Database(capped.DB).CreateCollection(ctx, capped.Coll, options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(1000)); err != nil {
		t.Fatal(err)
	}
	seed(t, src, capped, 0, 50)
	_, err := src.Database(a.DB).Collection(a.Coll).Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "s", Value: 1}}, Options: options.Index().SetUnique(true).SetName("s_unique")},
		{Keys: bson.D{{Key: "n", Value: -1}, {Key: "s", Value: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}

	e, err := runEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	assertSame(t, src, dst, a, b, capped)

	// Capped options are kept.
	specs, err := dst.Database(capped.DB).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: capped.Coll}})
	if err != nil || len(specs) != 1 {
		t.Fatalf("list %s: %v %v", capped, specs, err)
	}
	if diff := cmp.Diff(bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int64(1 << 20)}, {Key: "max", Value: int64(1000)}}, decodeD(t, specs[0].Options)); diff != "" {
		t.Errorf("capped options (-want +got):\n%s", diff)
	}

	// Indexes are there, the unique one relaxed until restoreUniqueIndexes.
	wantIx := map[string]bool{"s_unique": false, "n_-1_s_1": false}
	if diff := cmp.Diff(wantIx, indexUniqueness(t, dst, a)); diff != "" {
		t.Errorf("indexes during sync (-want +got):\n%s", diff)
	}
	// commit.go calls restoreUniqueIndexes inside Run; here Run is over, so
	// give the engine a live destination client.
	e.dst, e.store = dst, checkpoint.Open(dst, catalog.DefaultMetadataDB, testLogger(t))
	if err := e.restoreUniqueIndexes(ctx); err != nil {
		t.Fatalf("restore unique indexes: %v", err)
	}
	wantIx["s_unique"] = true
	if diff := cmp.Diff(wantIx, indexUniqueness(t, dst, a)); diff != "" {
		t.Errorf("indexes after restore (-want +got):\n%s", diff)
	}
	if err := e.restoreUniqueIndexes(ctx); err != nil { // idempotent
		t.Fatalf("restore again: %v", err)
	}

	p := e.Progress()
	cc := p.CollectionCopy
	if cc.CopiedDocuments != 3550 || cc.EstimatedTotalDocuments != 3550 || cc.CollectionsCopied != 3 || cc.CollectionsTotal != 3 ||
		cc.EstimatedCopiedBytes != cc.EstimatedTotalBytes || cc.ETASeconds != 0 {
		t.Errorf("progress at the end: %+v", cc)
	}
	if p.StartPoint.IsZero() || p.IndexBuilding.Built != 2 {
		t.Errorf("progress: start point %v, index building %+v", p.StartPoint, p.IndexBuilding)
	}
	for _, n := range p.Namespaces {
		if n.State != migration.CopyIndexed || n.CopiedDocuments != n.EstimatedDocuments {
			t.Errorf("namespace progress %+v", n)
		}
	}

	// A second run with the same parameters resumes a finished copy: nothing is copied again.
	if _, err := dst.Database(b.DB).Collection(b.Coll).InsertOne(ctx, bson.D{{Key: "_id", Value: "marker"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := runEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n, _ := dst.Database(b.DB).Collection(b.Coll).CountDocuments(ctx, bson.D{{Key: "_id", Value: "marker"}}); n != 1 {
		t.Errorf("a finished namespace was copied again (marker gone)")
	}
}

func decodeD(t testing.TB, r bson.Raw) bson.D {
	var d bson.D
	if err := bson.Unmarshal(r, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func indexUniqueness(t testing.TB, c *mongo.Client, ns migration.Namespace) map[string]bool {
	t.Helper()
	ixs, err := catalog.ListIndexes(context.Background(), c, ns)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, ix := range ixs {
		out[ix.Name] = ix.Unique()
	}
	return out
}

func TestFiltersAndSystemNamespaces(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	for _, ns := range []string{"app.users", "app.events", "app.tmp_1", "app.tmp_2", "other.x", "logs2024.a", "logs2025.b"} {
		n, _ := migration.ParseNamespace(ns)
		seed(t, src, n, 0, 5)
	}
	opts := Options{
		Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI()),
		Include: []migration.Filter{{Database: "app"}, {DatabaseRegex: &migration.Regex{Pattern: "^logs"}, Collections: []string{"a", "b"}}},
		Exclude: []migration.Filter{{Database: "app", CollectionsRegex: &migration.Regex{Pattern: "^tmp_"}}, {Database: "logs2025"}},
	}
	if _, err := runEngine(t, opts); err != nil {
		t.Fatalf("run: %v", err)
	}
	got := map[string][]string{}
	for _, db := range []string{"app", "other", "logs2024", "logs2025"} {
		got[db] = collNames(t, dst, db)
	}
	want := map[string][]string{"app": {"events", "users"}, "other": {}, "logs2024": {"a"}, "logs2025": {}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 || slices.Equal(a, b) })); diff != "" {
		t.Errorf("destination namespaces (-want +got):\n%s", diff)
	}
	// The metadata database holds the run; it is not copied from anywhere.
	if names := collNames(t, dst, catalog.DefaultMetadataDB); !slices.Contains(names, "run") {
		t.Errorf("metadata collections: %v", names)
	}
}

func TestDestinationNotEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	in, other := migration.Namespace{DB: "app", Coll: "users"}, migration.Namespace{DB: "keep", Coll: "mine"}
	seed(t, src, in, 0, 20)
	seed(t, dst, in, 100, 3) // stale data in scope
	seed(t, dst, other, 0, 3)
	opts := Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}

	_, err := runEngine(t, opts)
	if !errors.Is(err, ErrDestinationNotEmpty) {
		t.Fatalf("run on a non-empty destination: got %v, want ErrDestinationNotEmpty", err)
	}
	if found, _ := dst.Database(catalog.DefaultMetadataDB).ListCollectionNames(ctx, bson.D{}); len(found) != 0 {
		t.Errorf("a refused run left metadata: %v", found)
	}
	opts.DropDestinationData = true
	if _, err := runEngine(t, opts); err != nil {
		t.Fatalf("run with dropDestinationData: %v", err)
	}
	assertSame(t, src, dst, in)
	if n, _ := dst.Database(other.DB).Collection(other.Coll).CountDocuments(ctx, bson.D{}); n != 3 {
		t.Errorf("out-of-scope namespace touched: %d docs, want 3", n)
	}
}

func TestRunMismatchRefused(t *testing.T) {
	t.Parallel()
	srcA, srcB, dstSrv := mongotest.StartSource(t), mongotest.StartSource(t), mongotest.StartDestination(t)
	seed(t, mongotest.Client(t, srcA), migration.Namespace{DB: "a", Coll: "c"}, 0, 5)
	seed(t, mongotest.Client(t, srcB), migration.Namespace{DB: "b", Coll: "c"}, 0, 5)
	if _, err := runEngine(t, Options{Source: mdb.URI(srcA.URI()), Destination: mdb.URI(dstSrv.URI())}); err != nil {
		t.Fatalf("first run: %v", err)
	}
	_, err := runEngine(t, Options{Source: mdb.URI(srcB.URI()), Destination: mdb.URI(dstSrv.URI())})
	var me *checkpoint.MismatchError
	if !errors.Is(err, checkpoint.ErrRunMismatch) || !errors.As(err, &me) || me.Stored.Source == me.Wanted.Source {
		t.Fatalf("run from another source: got %v, want a source mismatch", err)
	}
	// Other filters are a different run too.
	_, err = runEngine(t, Options{Source: mdb.URI(srcA.URI()), Destination: mdb.URI(dstSrv.URI()), Include: []migration.Filter{{Database: "a"}}})
	if !errors.Is(err, checkpoint.ErrRunMismatch) {
		t.Fatalf("run with other filters: got %v, want ErrRunMismatch", err)
	}
}

func TestStartPoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mongotest.StartSource(t)
	c := mongotest.Client(t, srv)
	seed(t, c, migration.Namespace{DB: "d", Coll: "c"}, 0, 3)
	sp, err := DetectStartPoint(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	oplogTS := func(id int) bson.Timestamp {
		var e struct {
			TS bson.Timestamp `bson:"ts"`
		}
		if err := c.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{{Key: "o._id", Value: id}}).Decode(&e); err != nil {
			t.Fatal(err)
		}
		return e.TS
	}
	before := oplogTS(2)
	seed(t, c, migration.Namespace{DB: "d", Coll: "c"}, 3, 1)
	after := oplogTS(3)
	// Every entry written after the start point orders after it; entries
	// written before it are at most in the same second (replayed: idempotent).
	if sp.Method != StartOplogClock || migration.CompareTS(after, sp.Pos.TS) <= 0 || sp.Pos.TS.T < before.T {
		t.Errorf("start point %+v; newest entry before it %v, first entry after it %v", sp, before, after)
	}

	standalone := mongotest.StartServer(t, mongotest.Standalone())
	if _, err := DetectStartPoint(ctx, mongotest.Client(t, standalone)); !errors.Is(err, mdb.ErrNoChangeHistory) {
		t.Errorf("standalone source: got %v, want ErrNoChangeHistory", err)
	}
}
