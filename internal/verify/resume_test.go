package verify

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// The kill test runs a verification in a child process (this test binary
// re-executed) so it can be killed with SIGKILL mid-run.
const (
	childSourceEnv = "LIVEMIGRATE_VERIFY_CHILD_SOURCE"
	childDestEnv   = "LIVEMIGRATE_VERIFY_CHILD_DESTINATION"
)

func TestMain(m *testing.M) {
	if os.Getenv(childSourceEnv) != "" {
		os.Exit(verifyChild())
	}
	os.Exit(m.Run())
}

// resumeOptions are the options of both the killed and the resumed run.
func resumeOptions(src, dst *mongo.Client) Options {
	return Options{Source: src, Destination: dst, RunID: "killed", Concurrency: 1, Rechecks: 3, RecheckBackoff: 100 * time.Millisecond, MaxExamples: 100}
}

func verifyChild() int {
	ctx := context.Background()
	src, err := mongo.Connect(options.Client().ApplyURI(os.Getenv(childSourceEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dst, err := mongo.Connect(options.Client().ApplyURI(os.Getenv(childDestEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	v, err := New(resumeOptions(src, dst), nil)
	if err == nil {
		_, err = v.Run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestKilledVerificationResumes(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	ctx := context.Background()
	const collections = 6
	for i := range collections {
		ns := fmt.Sprintf("r.c%d", i)
		seed(t, ns, 200, src, dst)
		// A difference in every collection makes each one take a few recheck rounds.
		if _, err := dst.Database("r").Collection(fmt.Sprintf("c%d", i)).DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(i)}}); err != nil {
			t.Fatal(err)
		}
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childSourceEnv+"="+srcSrv.URI(), childDestEnv+"="+dstSrv.URI())
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	progress := dst.Database(DefaultMetadataDB).Collection(ProgressCollection)
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := progress.CountDocuments(ctx, bson.D{{Key: "run", Value: "killed"}, {Key: "stage", Value: stageDone}})
		if err == nil && n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			_ = child.Process.Kill()
			t.Fatalf("child verified fewer than 2 namespaces in 60s (last count %d, err %v)", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if child.ProcessState.Success() {
		t.Fatal("child finished before it was killed; the test proves nothing")
	}
	done, _ := progress.CountDocuments(ctx, bson.D{{Key: "run", Value: "killed"}, {Key: "stage", Value: stageDone}})
	if done >= collections {
		t.Fatalf("all %d namespaces were done before the kill; the test proves nothing", done)
	}

	o := resumeOptions(src, dst)
	o.TempDir = t.TempDir()
	v, err := New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := v.Run(ctx)
	if err != nil {
		t.Fatalf("resumed verify: %v", err)
	}
	if resumed.Totals.ResumedNamespaces < 2 || int64(resumed.Totals.ResumedNamespaces) > done {
		t.Errorf("resumed run took %d namespaces from the killed one, want between 2 and %d", resumed.Totals.ResumedNamespaces, done)
	}
	fresh := run(t, Options{Source: src, Destination: dst, RunID: "fresh"})
	if diff := cmp.Diff(summarizeReport(fresh), summarizeReport(resumed)); diff != "" {
		t.Errorf("resumed report differs from a fresh one (-fresh +resumed):\n%s", diff)
	}
	if resumed.Totals.Missing != collections {
		t.Errorf("resumed report: %d missing, want %d", resumed.Totals.Missing, collections)
	}
}

func TestLiveSourceSettlesBeforeReport(t *testing.T) {
	t.Parallel()
	src, dst := pair(t)
	ctx := context.Background()
	seed(t, "app.items", 500, src, dst)
	w := mongotest.StartWorkload(ctx, src, mongotest.WorkloadOptions{Namespaces: []string{"app.items"}, Writers: 2, Rate: 300, Seed: 7, IDBase: 1_000_000})
	for deadline := time.Now().Add(30 * time.Second); len(w.Counts()) == 0 || sum(w.Counts()) < 30; {
		if time.Now().After(deadline) {
			t.Fatal("workload wrote fewer than 30 documents in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	v, err := New(Options{Source: src, Destination: dst, Rechecks: 3, RecheckBackoff: time.Second, TempDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := v.Run(ctx)
		done <- result{rep, err}
	}()
	// The source keeps changing while verification scans; once verification
	// has found its candidates, writes stop and the destination is brought
	// equal (as the engine's drain does) before the first re-read.
	for !v.Progress().Rechecking {
		select {
		case r := <-done:
			t.Fatalf("verification finished without rechecking anything: %+v %v", r.rep, r.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := w.Stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	// A write whose context was cancelled by Stop may still be applied by
	// the server a moment later; let those land before the drain.
	time.Sleep(300 * time.Millisecond)
	copyAll(t, src, dst, "app", "items")

	r := <-done
	if r.err != nil {
		t.Fatalf("verify: %v", r.err)
	}
	if !r.rep.Equal() {
		t.Errorf("report after the destination caught up is not equal: %+v", summarizeReport(r.rep))
	}
	if r.rep.Totals.Rechecked == 0 {
		t.Error("no document was rechecked, so the live source was never seen differing")
	}
}

func sum(m map[mongotest.OpKind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// copyAll makes dst's collection a copy of src's.
func copyAll(t *testing.T, src, dst *mongo.Client, db, coll string) {
	t.Helper()
	ctx := context.Background()
	cur, err := src.Database(db).Collection(coll).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []any
	for cur.Next(ctx) {
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	c := dst.Database(db).Collection(coll)
	if _, err := c.DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
}
