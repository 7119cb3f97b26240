package clone

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// digests reads ns with bounded batches and returns each document's hash by
// its raw _id.
func digests(t *testing.T, c *mongo.Client, ns migration.Namespace) map[string][32]byte {
	t.Helper()
	ctx := context.Background()
	cur, err := mdb.Find(ctx, c.Database(ns.DB).Collection(ns.Coll), bson.D{}, mdb.NewBatchSizer(mdb.SizerOptions{}))
	if err != nil {
		t.Fatalf("read %s: %v", ns, err)
	}
	defer cur.Close(ctx)
	out := map[string][32]byte{}
	for cur.Next(ctx) {
		out[cur.Current().Lookup("_id").String()] = sha256.Sum256(cur.Current())
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("read %s: %v", ns, err)
	}
	return out
}

func assertCopied(t *testing.T, src, dst *mongo.Client, nss ...migration.Namespace) {
	t.Helper()
	for _, ns := range nss {
		want, got := digests(t, src, ns), digests(t, dst, ns)
		if len(want) == 0 {
			t.Fatalf("%s: the source is empty", ns)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: %d source documents, %d on the destination; differing (-source +destination):\n%.1500s", ns, len(want), len(got), diff)
		}
	}
}

func insertSmall(t *testing.T, c *mongo.Client, ns migration.Namespace, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: strings.Repeat("s", 200)}}
	}
	if _, err := c.Database(ns.DB).Collection(ns.Coll).InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

// smallNamespaces seeds n namespaces db.<prefix><i> of docs small
// documents each and returns them with their copy tasks (the last largest).
func smallNamespaces(t *testing.T, src *mongo.Client, db, prefix string, n, docs int) ([]migration.Namespace, []Task) {
	t.Helper()
	var nss []migration.Namespace
	var tasks []Task
	for i := range n {
		ns := migration.Namespace{DB: db, Coll: fmt.Sprintf("%s%d", prefix, i)}
		insertSmall(t, src, ns, docs)
		nss = append(nss, ns)
		tasks = append(tasks, Task{NS: ns, EstimatedBytes: int64(i)})
	}
	return nss, tasks
}

// connectVia connects to srv through proxy until the test ends.
func connectVia(t *testing.T, srv *mongotest.Server, proxy *mongotest.Proxy) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URIFor(proxy.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// beginCounter is Hooks.Begin that empties the namespace and counts attempts.
type beginCounter struct {
	dst *mongo.Client
	mu  sync.Mutex
	n   map[migration.Namespace]int
}

func (b *beginCounter) begin(ctx context.Context, t Task) error {
	b.mu.Lock()
	if b.n == nil {
		b.n = map[migration.Namespace]int{}
	}
	b.n[t.NS]++
	b.mu.Unlock()
	return b.dst.Database(t.NS.DB).Collection(t.NS.Coll).Drop(ctx)
}

// restarts is how many times namespaces were begun again.
func (b *beginCounter) restarts() int {
	n := 0
	for _, a := range b.attempts() {
		n += a - 1
	}
	return n
}

func (b *beginCounter) attempts() map[migration.Namespace]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[migration.Namespace]int{}
	for k, v := range b.n {
		out[k] = v
	}
	return out
}

var fastRetry = mdb.RetryPolicy{MaxElapsed: time.Minute, Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}

// TestCopyLargeDocuments: 150 documents of 100–900 KB, the empty document
// and one near the largest size FerretDB stores (16 MiB − 64 B; it accepts
// every size up to the BSON limit), next to collections of small documents,
// copy on the first attempt — no reply over the driver's 48 MB limit, no
// cursor lost — and arrive byte for byte.
func TestCopyLargeDocuments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	big := migration.Namespace{DB: "d", Coll: "big"}
	r := rand.New(rand.NewPCG(12, 2))
	coll := src.Database(big.DB).Collection(big.Coll)
	docs := []any{bson.D{{Key: "_id", Value: "empty"}}}
	for i := range 150 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: strings.Repeat("b", 100<<10+r.IntN(800<<10))}})
		if i == 70 {
			docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("max%d", i)}, {Key: "pad", Value: strings.Repeat("m", mdb.MaxBSONSize-64)}})
		}
	}
	began := time.Now()
	for i := 0; i < len(docs); i += 20 {
		if _, err := coll.InsertMany(ctx, docs[i:min(i+20, len(docs))]); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	t.Logf("seeded %d large documents in %s", len(docs), time.Since(began).Round(time.Millisecond))
	small := []migration.Namespace{{DB: "d", Coll: "s1"}, {DB: "e", Coll: "s2"}}
	tasks := []Task{{NS: big, EstimatedBytes: 3}}
	for i, ns := range small {
		insertSmall(t, src, ns, 3000)
		tasks = append(tasks, Task{NS: ns, EstimatedBytes: int64(i)})
	}
	bc := &beginCounter{dst: dst}
	cp := New(src, dst, Options{Retry: fastRetry}, testLogger(t))
	began = time.Now()
	if err := cp.CopyAll(ctx, tasks, Hooks{Begin: bc.begin}); err != nil {
		t.Fatalf("copy: %v", err)
	}
	t.Logf("copied in %s, peak %d MiB in flight", time.Since(began).Round(time.Millisecond), cp.PeakBytesInFlight()>>20)
	want := map[migration.Namespace]int{big: 1, small[0]: 1, small[1]: 1}
	if diff := cmp.Diff(want, bc.attempts()); diff != "" {
		t.Errorf("attempts per namespace (-want +got):\n%s", diff)
	}
	assertCopied(t, src, dst, small...)
	// The large documents are compared with what was inserted (reading
	// them back from the source too would double the test's time).
	wantBig := map[string][32]byte{}
	for _, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		wantBig[bson.Raw(raw).Lookup("_id").String()] = sha256.Sum256(raw)
	}
	if diff := cmp.Diff(wantBig, digests(t, dst, big)); diff != "" {
		t.Errorf("%s on the destination differs from the documents inserted (-want +got):\n%.1500s", big, diff)
	}
}

// TestCopyRestartsAfterLostCursors: every source connection is reset in
// the middle of the copy; FerretDB drops every cursor opened on those
// connections, so each namespace's next getMore fails (connection closed
// or CursorNotFound). Each namespace is begun again and the copy completes.
func TestCopyRestartsAfterLostCursors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	nss, tasks := smallNamespaces(t, src, "d", "c", 3, 4000)
	proxy := mongotest.NewProxy(t, srcSrv.Addr())
	viaProxy := connectVia(t, srcSrv, proxy)

	bc := &beginCounter{dst: dst}
	var copied atomic.Int64
	var once sync.Once
	cp := New(viaProxy, dst, Options{Retry: fastRetry, BatchDocuments: 200}, testLogger(t))
	err := cp.CopyAll(ctx, tasks, Hooks{
		Begin: bc.begin,
		Progress: func(_ Task, docs, _ int64) {
			if copied.Add(docs) >= 1500 {
				once.Do(proxy.ResetAll)
			}
		},
	})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if bc.restarts() == 0 {
		t.Errorf("no namespace was begun again after the reset: %v", bc.attempts())
	}
	t.Logf("attempts: %v", bc.attempts())
	assertCopied(t, src, dst, nss...)
}

// TestCopyDeterministicFailure: the source connection breaks at the same
// reply every time (the proxy resets any connection on which the server
// sends a message over 512 KiB, and one document of the collection is
// 1 MiB): after Options.SameFailures attempts the copy stops with an error
// that names the namespace and says the failure is deterministic, instead
// of retrying for minutes.
func TestCopyDeterministicFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	bad := migration.Namespace{DB: "d", Coll: "bad"}
	insertSmall(t, src, bad, 300)
	if _, err := src.Database(bad.DB).Collection(bad.Coll).InsertOne(ctx, bson.D{{Key: "_id", Value: "big"}, {Key: "pad", Value: strings.Repeat("x", 1<<20)}}); err != nil {
		t.Fatal(err)
	}
	proxy := mongotest.NewProxy(t, srcSrv.Addr())
	proxy.ResetOnReplyOver(512 << 10)
	viaProxy := connectVia(t, srcSrv, proxy)

	bc := &beginCounter{dst: dst}
	cp := New(viaProxy, dst, Options{Retry: fastRetry}, testLogger(t))
	began := time.Now()
	err := cp.CopyAll(ctx, []Task{{NS: bad}}, Hooks{Begin: bc.begin})
	var ce *CopyError
	if !errors.As(err, &ce) {
		t.Fatalf("copy = %v, want a *CopyError", err)
	}
	t.Logf("error after %s: %v", time.Since(began).Round(time.Millisecond), err)
	if !ce.Deterministic || ce.NS != bad || ce.Attempts != 3 || ce.At <= 0 || ce.At > 300 || ce.Hint == "" {
		t.Errorf("CopyError = %+v, want deterministic on %s after 3 attempts before document 300, with a hint", ce, bad)
	}
	if n := bc.attempts()[bad]; n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	// The fault gone, the same copy succeeds.
	proxy.Pass()
	if err := cp.CopyAll(ctx, []Task{{NS: bad}}, Hooks{Begin: bc.begin}); err != nil {
		t.Fatalf("copy after the fault ended: %v", err)
	}
	assertCopied(t, src, dst, bad)
}

// TestCopySurvivesSourceRestart: the source server is stopped and started
// again in the middle of the copy; every namespace being copied is begun
// again once it is back, and the copy completes.
func TestCopySurvivesSourceRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	nss, tasks := smallNamespaces(t, src, "d", "r", 2, 4000)
	bc := &beginCounter{dst: dst}
	var copied atomic.Int64
	var once sync.Once
	restarted := make(chan error, 1)
	cp := New(src, dst, Options{Retry: fastRetry, BatchDocuments: 200}, testLogger(t))
	err := cp.CopyAll(ctx, tasks, Hooks{
		Begin: bc.begin,
		Progress: func(_ Task, docs, _ int64) {
			if copied.Add(docs) >= 1000 {
				// Synchronous: this namespace's copy waits for the restart, so
				// its cursor is gone when it reads on, however fast the
				// machine (the other may finish first).
				once.Do(func() { restarted <- srcSrv.Restart(ctx) })
			}
		},
	})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if err := <-restarted; err != nil {
		t.Fatalf("restart the source: %v", err)
	}
	if bc.restarts() == 0 {
		t.Errorf("no namespace was begun again after the restart: %v", bc.attempts())
	}
	t.Logf("attempts: %v", bc.attempts())
	assertCopied(t, src, dst, nss...)
}

// A lost cursor that ends a copy names the failure that closed its
// connection (another namespace's reply too large), not only the symptom.
func TestRootCauseOfLostCursor(t *testing.T) {
	c := New(nil, nil, Options{}, slog.New(slog.DiscardHandler))
	a, b := migration.Namespace{DB: "d", Coll: "a"}, migration.Namespace{DB: "d", Coll: "b"}
	lost := fmt.Errorf("read: %w", mongo.CommandError{Code: 43, Name: "CursorNotFound", Message: "cursor id 7 not found"})
	if got := c.rootCause(b, lost); got != lost {
		t.Errorf("with no connection lost, the cause is %v, want the error itself", got)
	}
	c.noteConnLoss(a, errors.New("length of read message too large"))
	got := c.rootCause(b, lost)
	if !errors.Is(got, lost) || !strings.Contains(got.Error(), "d.a") || !strings.Contains(got.Error(), "too large") {
		t.Errorf("cause = %v, want the CursorNotFound explained by d.a's reply too large", got)
	}
	if got := c.rootCause(a, lost); got != lost {
		t.Errorf("a namespace's own connection loss is not another's cause: %v", got)
	}
	// A connection reset (transient) closes the connection as well: it is
	// what a lost cursor of another namespace is blamed on, and what keeps
	// that loss from counting towards the other's deterministic failure.
	c.noteConnLoss(a, errors.New("connection reset by peer"))
	if loss := c.lossElsewhere(b); loss == nil || loss.ns != a {
		t.Errorf("lossElsewhere(%s) = %+v, want %s's reset", b, loss, a)
	}
	if loss := c.lossElsewhere(a); loss != nil {
		t.Errorf("lossElsewhere(%s) = %+v, want nil: its own loss", a, loss)
	}
	c.mu.Lock()
	c.lastLoss.at = time.Now().Add(-2 * time.Minute)
	c.mu.Unlock()
	if loss := c.lossElsewhere(b); loss != nil {
		t.Errorf("lossElsewhere after two minutes = %+v, want nil", loss)
	}
}
