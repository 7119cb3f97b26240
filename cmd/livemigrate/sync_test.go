package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/syncapi"
)

func TestSyncBarLine(t *testing.T) {
	copying := migration.Progress{State: migration.StateRunning, Phase: migration.PhaseCopying,
		CollectionCopy: migration.CopyProgress{EstimatedTotalBytes: 4_000_000, EstimatedCopiedBytes: 1_000_000, CollectionsTotal: 4, CollectionsCopied: 1, ETASeconds: 90}}
	applying := migration.Progress{State: migration.StateRunning, Phase: migration.PhaseApplying, LagTimeSeconds: 3, TotalEventsApplied: 1234, CanCommit: true,
		CollectionCopy: migration.CopyProgress{EstimatedTotalBytes: 4_000_000, EstimatedCopiedBytes: 3_900_000}}
	for _, tc := range []struct {
		p    migration.Progress
		want string
	}{
		{copying, "RUNNING   [##--------]  25% copy  976.6 KiB/3.8 MiB  1/4 collections  ETA 1m30s"},
		{applying, "RUNNING   [##########] 100% copy  change event application  lag 3s  events 1234  canCommit (POST /api/v1/commit)"},
		{func() migration.Progress {
			p := applying
			p.Background = &migration.BackgroundVerification{NamespacesVerified: 3, Namespaces: 4}
			return p
		}(), "RUNNING   [##########] 100% copy  change event application  lag 3s  events 1234  verified in background 3/4  canCommit (POST /api/v1/commit)"},
	} {
		if diff := cmp.Diff(tc.want, barLine(tc.p, 10)); diff != "" {
			t.Errorf("barLine (-want +got):\n%s", diff)
		}
	}

	// On a terminal a shorter line blanks what is left of the longer one.
	var buf bytes.Buffer
	d := &syncDisplay{w: &buf, tty: true}
	d.show(applying, time.Now())
	long := buf.Len()
	buf.Reset()
	d.show(migration.Progress{State: migration.StateCommitted, Phase: migration.PhaseCommitted, CanWrite: true}, time.Now())
	d.done()
	if got := buf.String(); !strings.HasPrefix(got, "\r") || !strings.HasSuffix(got, " \n") || len(got) != long+1 {
		t.Errorf("in-place line %q: want \\r, padded to the previous %d bytes, then a newline", got, long)
	}
}

// TestSyncCommandEndToEnd builds the livemigrate binary, runs `livemigrate
// sync` against two servers, and drives it over its API: start, progress
// until canCommit while a workload writes, commit, COMMITTED; then the
// destination equals the source.
func TestSyncCommandEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	var docs []any
	for i := range 300 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "s", Value: fmt.Sprintf("doc-%d", i)}, {Key: "n", Value: int64(i)}})
	}
	if _, err := src.Database("app").Collection("items").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(livemigrateBinary(t), "sync", "--source", srcSrv.URI(), "--destination", dstSrv.URI(), "--listen", "127.0.0.1:0", "--linger", "3s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var out strings.Builder
	var outMu sync.Mutex
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`API on http://([^/]+)/api/v1/`)
		for sc.Scan() {
			outMu.Lock()
			out.WriteString(sc.Text() + "\n")
			outMu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // an error once it exited
	var base string
	select {
	case a := <-addr:
		base = "http://" + a + "/api/v1/"
	case err := <-exited:
		t.Fatalf("livemigrate sync exited before serving its API: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("livemigrate sync did not announce its API in 30s\n%s", stderr.String())
	}

	post := func(path string) syncapi.Response {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", nil)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		var r syncapi.Response
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatalf("POST %s: decode: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK || !r.Success {
			t.Fatalf("POST %s: %d %+v", path, resp.StatusCode, r)
		}
		return r
	}
	progress := func() syncapi.ProgressResponse {
		t.Helper()
		resp, err := http.Get(base + "progress")
		if err != nil {
			t.Fatalf("GET progress: %v", err)
		}
		defer resp.Body.Close()
		var p syncapi.ProgressResponse
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatalf("GET progress: decode: %v", err)
		}
		return p
	}
	poll := func(what string, d time.Duration, cond func(migration.Progress) bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			p := progress().Progress
			if cond(p) {
				return
			}
			if p.State == migration.StateFailed || time.Now().After(deadline) {
				t.Fatalf("waiting for %s: progress %+v\n%s", what, p, stderr.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	if p := progress(); p.Progress.State != migration.StateIdle {
		t.Fatalf("before start: state %s, want IDLE", p.Progress.State)
	}
	post("start")
	wl := mongotest.StartWorkload(ctx, src, mongotest.WorkloadOptions{Namespaces: []string{"app.items"}, Writers: 2, Rate: 80, Seed: 5, IDBase: 1_000_000})
	poll("change application", 60*time.Second, func(p migration.Progress) bool { return p.Phase == migration.PhaseApplying })
	time.Sleep(2 * time.Second)
	if _, err := wl.Stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	poll("canCommit", 60*time.Second, func(p migration.Progress) bool { return p.CanCommit })
	post("commit")
	poll("COMMITTED", 60*time.Second, func(p migration.Progress) bool { return p.State == migration.StateCommitted && p.CanWrite })

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("livemigrate sync: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("livemigrate sync did not exit after the commit")
	}
	outMu.Lock()
	text := out.String()
	outMu.Unlock()
	if !strings.Contains(text, "committed: ") || !strings.Contains(text, "verified=true") ||
		!strings.Contains(text, "verification continuous") || !strings.Contains(text, "coverage complete") {
		t.Errorf("stdout lacks the commit report:\n%s", text)
	}
	// Nothing to repair: change application lost no event.
	if !strings.Contains(text, " 0 missing, 0 extra, 0 differing found, 0 repaired, verified=true") {
		t.Errorf("commit report does not say nothing was found or repaired:\n%s", text)
	}
	if !strings.Contains(text, "state=COMMITTED") {
		t.Errorf("stdout (not a terminal) lacks plain progress lines:\n%s", text)
	}
	want, got := allDocs(t, src), allDocs(t, dst)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("app.items differs (-source +destination):\n%.2000s", diff)
	}
}

func allDocs(t *testing.T, c *mongo.Client) map[string]string {
	t.Helper()
	cur, err := c.Database("app").Collection("items").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for cur.Next(context.Background()) {
		m[cur.Current.Lookup("_id").String()] = string(cur.Current)
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatal("no documents")
	}
	return m
}

func TestSyncVerificationModeRefused(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run([]string{"sync", "--source", "mongodb://a:1", "--destination", "mongodb://b:1", "--verification", "fast"}, strings.NewReader(""), &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), `--verification: verification mode "fast": want continuous`) {
		t.Errorf("--verification fast: exit %d, stderr %q; want a usage error naming the modes", code, stderr.String())
	}
	s := &syncRun{ctx: context.Background(), env: &env{stdout: &stdout}, done: make(chan error, 1)}
	err := s.Start(syncapi.StartRequest{VerificationMode: "fast"})
	if !errors.Is(err, syncapi.ErrInvalidRequest) || s.engine() != nil {
		t.Errorf("start with verificationMode fast: %v (engine %v), want ErrInvalidRequest and nothing started", err, s.engine())
	}
}
