package engine

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/clone"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

const helperEnv = "LIVEMIGRATE_ENGINE_HELPER"

// Modes of TestHelperEngineProcess.
const (
	// helperCopy copies with one worker in batches of 100 documents and
	// stops after the copy (TestResumeAfterKill).
	helperCopy = "copy"
	// helperSync runs until killed (TestKillEngineDuringChangeApplication).
	helperSync = "sync"
)

// TestHelperEngineProcess is not a test: the kill -9 tests run the test
// binary again with only this function and the env set, so the engine runs
// in a process of its own that can be killed with SIGKILL.
func TestHelperEngineProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process of the kill -9 tests")
	}
	opts := Options{Source: mdb.URI(os.Getenv(helperEnv + "_SRC")), Destination: mdb.URI(os.Getenv(helperEnv + "_DST"))}
	if mode == helperCopy {
		opts.Copy, opts.StopAfterCopy = clone.Options{Workers: 1, InsertersPerTask: 1, BatchDocuments: 100}, true
	}
	e, err := New(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background()); err != nil {
		t.Fatalf("engine run: %v", err)
	}
}

// helper is the command of an engine process in mode from src to dst.
func helper(mode string, src, dst *mongotest.Server) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEngineProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_SRC="+src.URI(), helperEnv+"_DST="+dst.URI())
	return cmd
}

// engineProcess is a started helper: its combined output and Wait's result.
type engineProcess struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func startHelper(t *testing.T, mode string, src, dst *mongotest.Server) engineProcess {
	t.Helper()
	p := engineProcess{cmd: helper(mode, src, dst), out: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

func TestResumeAfterKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	nss := []migration.Namespace{{DB: "a", Coll: "big"}, {DB: "a", Coll: "mid"}, {DB: "b", Coll: "small"}, {DB: "b", Coll: "tiny"}}
	for i, ns := range nss {
		seed(t, src, ns, 0, []int{6000, 3000, 1500, 300}[i])
		_, err := src.Database(ns.DB).Collection(ns.Coll).Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "s", Value: 1}}, Options: options.Index().SetUnique(true)})
		if err != nil {
			t.Fatal(err)
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills := 0
	for attempt := 0; kills < 5 && attempt < 12; attempt++ {
		p := startHelper(t, helperCopy, srcSrv, dstSrv)
		// The engine process takes ~0.3 s to start; kill it somewhere in its run.
		delay := time.Duration(300+rng.IntN(1200)) * time.Millisecond
		select {
		case err := <-p.done:
			if err != nil {
				t.Fatalf("engine process failed before it was killed: %v\n%s", err, p.out.String())
			}
			t.Logf("attempt %d: engine finished before the kill at %v", attempt, delay)
			continue
		case <-time.After(delay):
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		err := <-p.done
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Logf("attempt %d: engine finished at the kill (%v)", attempt, err)
			continue
		}
		kills++
		st := copyStates(t, dst)
		t.Logf("kill %d after %v: %v", kills, delay, st)
	}
	if kills == 0 {
		t.Errorf("no kill landed while the engine ran; the dataset is too small for this machine")
	} else if kills < 5 {
		t.Logf("only %d kills landed while the engine ran", kills)
	}

	// Run to completion, then every document must be there exactly once and byte-exact.
	if out, err := helper(helperCopy, srcSrv, dstSrv).CombinedOutput(); err != nil {
		t.Fatalf("final engine run: %v\n%s", err, out)
	}
	assertSame(t, src, dst, nss...)
	for _, ns := range nss {
		if got := indexUniqueness(t, dst, ns); !cmpEqual(got, map[string]bool{"s_1": false}) {
			t.Errorf("%s indexes after resume: %v", ns, got)
		}
	}
	for ns, s := range copyStates(t, dst) {
		if s != migration.CopyIndexed {
			t.Errorf("%s: copy state %q after the final run", ns, s)
		}
	}
}

func cmpEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func copyStates(t *testing.T, dst *mongo.Client) map[string]migration.CopyState {
	cur, err := dst.Database(catalog.DefaultMetadataDB).Collection("copy").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		ID    string              `bson:"_id"`
		State migration.CopyState `bson:"state"`
	}
	if err := cur.All(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]migration.CopyState{}
	for _, c := range list {
		out[c.ID] = c.State
	}
	return out
}
