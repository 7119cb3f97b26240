package adversary

import (
	"context"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

var seedFlag = flag.Uint64("seed", 0, "seed of TestAdversarial (default: LIVEMIGRATE_SEED, else the clock)")

// testSeed is -seed, else $LIVEMIGRATE_SEED, else the clock; it is logged
// first and again when the test fails.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		if s := os.Getenv("LIVEMIGRATE_SEED"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("LIVEMIGRATE_SEED=%q: want an unsigned integer", s)
			}
			seed = n
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (reproduce: LIVEMIGRATE_SEED=%d go test -run %s ./internal/mongotest/adversary)", seed, seed, t.Name())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d", seed)
		}
	})
	return seed
}

// envInt is a size knob from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// long reports whether LIVEMIGRATE_ADV_LONG asks for the larger rounds. The
// default rounds keep `go test ./...` within minutes; `go run ./bench soak`
// runs rounds for as long as asked.
func long() bool { return os.Getenv("LIVEMIGRATE_ADV_LONG") != "" }

// TestAdversarial: generated documents of every type and size, a CRUD +
// DDL workload into the collections being copied, kill -9 of the engine
// process mid-copy and mid-apply, restart, commit. The round must end
// COMMITTED with no difference by the independent comparator, and with
// nothing repaired beyond the documented bound (documents moved by a
// rename, which FerretDB's oplog never shows: docs/design/testing.md).
//
// Knobs: -seed / LIVEMIGRATE_SEED; LIVEMIGRATE_ADV_LONG; LIVEMIGRATE_ADV_MAXDOC (largest
// document, bytes), LIVEMIGRATE_ADV_DOCS (documents per collection).
func TestAdversarial(t *testing.T) {
	maxDoc, docs, colls := 1<<20, 150, 2
	if long() {
		maxDoc, docs, colls = 2<<20, 250, 3
	}
	res := adversarialRound(t, WorkloadOptions{Collections: colls, Gen: GenOptions{MaxDocBytes: maxDoc, LargeEvery: 12}}, docs)
	for _, u := range res.UnexpectedRepairs() {
		t.Errorf("repaired beyond the documented bound: %s", u)
	}
}

// TestAdversarialLargeDocuments: large documents (one in six) and updates
// that grow them, concurrent writes and DDL without renames, kill -9 of the
// engine mid-copy and mid-apply, then commit: COMMITTED, no difference, and
// nothing repaired at all.
func TestAdversarialLargeDocuments(t *testing.T) {
	// 2 MiB: at 4 MiB every oplog poll exceeded its 30 s deadline and the
	// round never reached canCommit (docs/design/testing.md).
	// LIVEMIGRATE_ADV_MAXDOC raises it.
	maxDoc, docs, colls := 2<<20, 60, 2
	res := adversarialRound(t, WorkloadOptions{Collections: colls, NoRename: true, Gen: GenOptions{MaxDocBytes: maxDoc, LargeEvery: 6}}, docs)
	if res.Repaired != 0 {
		t.Errorf("commit repaired %d documents (%v), want 0: nothing in this round needs repair", res.Repaired, res.RepairedIn)
	}
}

// adversarialRound runs one round on fresh servers and checks what every
// round must hold; the caller checks the repaired count.
func adversarialRound(t *testing.T, wo WorkloadOptions, docs int) *Result {
	t.Helper()
	t.Parallel()
	seed := testSeed(t)
	ctx := context.Background()
	apply := 5 * time.Second
	if long() {
		apply = 8 * time.Second
	}
	wo.Gen.MaxDocBytes = envInt(t, "LIVEMIGRATE_ADV_MAXDOC", wo.Gen.MaxDocBytes)
	docs = envInt(t, "LIVEMIGRATE_ADV_DOCS", docs)
	wo.Databases, wo.Writers, wo.Rate, wo.DDLEvery = []string{"adv1", "adv2"}, 3, 60, 1500*time.Millisecond

	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	bin, err := BuildBinary(ctx, "../../../cmd/livemigrate", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	res, err := Run(ctx, Config{
		Seed: seed, Binary: bin,
		SourceURI: srcSrv.URI(), DestinationURI: dstSrv.URI(), Source: src, Destination: dst,
		Workload: wo, SeedDocuments: docs, CopyKills: 1, ApplyKills: 2, Apply: apply,
		LogDir: logDir, Logf: t.Logf,
	})
	if err != nil {
		t.Errorf("round: %v", err)
		if b, rerr := os.ReadFile(logDir + "/engine.log"); rerr == nil {
			t.Logf("engine log (last 6000 bytes):\n%s", tail(string(b), 6000))
		}
		t.FailNow()
	}
	t.Logf("%d collections, %d documents (%d bytes) compared in %s; commit report %v", res.Stats.Collections, res.Stats.Documents, res.Stats.Bytes, res.Elapsed.Round(time.Second), res.Report)
	if res.State != migration.StateCommitted {
		t.Errorf("state %s, want COMMITTED", res.State)
	}
	for i, d := range res.Differences {
		if i == 20 {
			t.Errorf("… %d differences in all", len(res.Differences))
			break
		}
		t.Errorf("difference: %s", d)
	}
	landed := map[migration.Phase]bool{}
	for _, k := range res.Kills {
		landed[k.Landed] = true
	}
	if !landed[migration.PhaseCopying] && !landed[migration.PhaseIndexing] {
		t.Errorf("no kill landed in the copy (kills %+v): raise LIVEMIGRATE_ADV_DOCS", res.Kills)
	}
	if !landed[migration.PhaseApplying] {
		t.Errorf("no kill landed in change application (kills %+v)", res.Kills)
	}
	if res.Stats.Documents == 0 || res.Counts.Ops == 0 {
		t.Errorf("compared %d documents after %d operations: the round did nothing", res.Stats.Documents, res.Counts.Ops)
	}
	return res
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// TestGeneratorAndComparator: the same seed makes the same documents; every
// generated document round-trips through FerretDB byte for byte (the
// generator makes nothing FerretDB refuses or changes); and the comparator
// finds each kind of difference and nothing on equal sides.
func TestGeneratorAndComparator(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	ctx := context.Background()
	o := GenOptions{MaxDocBytes: 1 << 20, LargeEvery: 30}
	a, b := NewGenerator(seed, 1, o), NewGenerator(seed, 1, o)
	for n := range int64(50) {
		x, _ := bson.Marshal(a.Document(ID(n)))
		y, _ := bson.Marshal(b.Document(ID(n)))
		if string(x) != string(y) {
			t.Fatalf("seed %d document %d differs between two generators", seed, n)
		}
	}

	srcSrv, dstSrv := mongotest.StartServer(t), mongotest.StartServer(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	g := NewGenerator(seed, 2, o)
	var docs []any
	want := map[string]bson.Raw{}
	for _, id := range SpecialIDs() {
		docs = append(docs, g.Document(id))
	}
	for n := range int64(200) {
		docs = append(docs, g.Document(ID(n)))
	}
	for _, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		want[bson.Raw(raw).Lookup("_id").String()] = raw
	}
	for _, c := range []string{"t.a", "t.b"} {
		for _, side := range []*mongo.Client{src, dst} {
			if _, err := coll(side, c).InsertMany(ctx, docs); err != nil {
				t.Fatalf("insert generated documents into %s: %v", c, err)
			}
		}
	}
	cur, err := coll(src, "t.a").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for cur.Next(ctx) {
		got++
		id := cur.Current.Lookup("_id").String()
		if string(want[id]) != string(cur.Current) {
			t.Errorf("seed %d: document _id %s changed in FerretDB:\nwrote %s\nread  %s", seed, id, tail(bson.Raw(want[id]).String(), 400), tail(cur.Current.String(), 400))
		}
	}
	if got != len(docs) {
		t.Errorf("read %d documents back, wrote %d", got, len(docs))
	}

	diffs, st, err := Compare(ctx, src, dst, CompareOptions{MaxDocBytes: o.MaxDocBytes})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 || st.Documents != int64(2*len(docs)) || st.Collections != 2 {
		t.Fatalf("equal sides: %d differences %v, %+v", len(diffs), diffs, st)
	}

	// One of each difference on the destination.
	b1, b2 := coll(dst, "t.b"), dst.Database("t")
	if _, err := b1.DeleteOne(ctx, bson.D{{Key: "_id", Value: ID(1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.InsertOne(ctx, bson.D{{Key: "_id", Value: "extra"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.UpdateOne(ctx, bson.D{{Key: "_id", Value: ID(3)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "cnt", Value: int64(-1)}}}}); err != nil {
		t.Fatal(err)
	}
	// Same value, another type: int32(5) and int64(5) are different bytes.
	if _, err := b1.DeleteOne(ctx, bson.D{{Key: "_id", Value: ID(2)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(ID(2).(int32))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "cnt", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := b2.CreateCollection(ctx, "only_dst"); err != nil {
		t.Fatal(err)
	}
	diffs, _, err = Compare(ctx, src, dst, CompareOptions{MaxDocBytes: o.MaxDocBytes})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var lines []string
	for _, d := range diffs {
		kinds[d.Kind]++
		lines = append(lines, d.String())
	}
	wantKinds := map[string]int{"missing": 2, "extra": 2, "differing": 1, "index": 1, "collection": 1}
	for k, n := range wantKinds {
		if kinds[k] != n {
			t.Errorf("%d %q differences, want %d; all:\n%s", kinds[k], k, n, strings.Join(lines, "\n"))
		}
	}
	if len(diffs) != 7 {
		t.Errorf("%d differences, want 7:\n%s", len(diffs), strings.Join(lines, "\n"))
	}
}
