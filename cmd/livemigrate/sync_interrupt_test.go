package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/syncapi"
)

var binary struct {
	once sync.Once
	path string
	err  error
}

// TestMain removes the binary livemigrateBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binary.path != "" {
		_ = os.RemoveAll(filepath.Dir(binary.path))
	}
	os.Exit(code)
}

// livemigrateBinary builds this command once per test process.
func livemigrateBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "livemigrate-bin")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "livemigrate")
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// startSyncProcess runs `livemigrate sync --start` and returns the process,
// its API base URL, its stderr and a channel with its exit.
func startSyncProcess(t *testing.T, src, dst *mongotest.Server) (*exec.Cmd, string, *mongotest.LockedBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(livemigrateBinary(t), "sync", "--source", src.URI(), "--destination", dst.URI(), "--listen", "127.0.0.1:0", "--start")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &mongotest.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`API on http://([^/]+)/api/v1/`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // an error once it exited
	select {
	case a := <-addr:
		return cmd, "http://" + a + "/api/v1/", stderr, exited
	case err := <-exited:
		t.Fatalf("livemigrate sync exited before serving its API: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("livemigrate sync did not announce its API in 30s\n%s", stderr.String())
	}
	return nil, "", nil, nil
}

// interruptSync sends SIGINT once the run applies changes and checks the
// clean stop: exit status 130, a plain message, no error.
func interruptSync(t *testing.T, cmd *exec.Cmd, base string, stderr *mongotest.LockedBuffer, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var p syncapi.ProgressResponse
		resp, err := http.Get(base + "progress")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
		}
		if err == nil && p.Progress.Phase == migration.PhaseApplying {
			break
		}
		if time.Now().After(deadline) || p.Progress.State == migration.StateFailed {
			t.Fatalf("waiting for change application: %v, progress %+v\n%s", err, p.Progress, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("livemigrate sync did not stop within 30s of SIGINT\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("after SIGINT: %v, want exit status %d\n%s", err, exitInterrupted, stderr.String())
	}
	log := stderr.String()
	if strings.Contains(log, "Error:") || strings.Contains(log, "context canceled") {
		t.Errorf("a clean stop printed an error:\n%s", log)
	}
	if !strings.Contains(log, "livemigrate sync: interrupted; stopped after a final checkpoint (run the same command again to resume)\n") {
		t.Errorf("stderr does not say the run stopped cleanly:\n%s", log)
	}
}

// TestSyncInterruptStopsCleanly: Ctrl-C during change application stops
// `livemigrate sync` with status 130 and a plain message, and the same
// command run again resumes the run it stopped.
func TestSyncInterruptStopsCleanly(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src := mongotest.Client(t, srcSrv)
	var docs []any
	for i := range 100 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: int64(i)}})
	}
	if _, err := src.Database("app").Collection("items").InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}

	cmd, base, stderr, exited := startSyncProcess(t, srcSrv, dstSrv)
	interruptSync(t, cmd, base, stderr, exited)
	if !strings.Contains(stderr.String(), "resumed=false") {
		t.Fatalf("first run: no 'run prepared' record with resumed=false:\n%s", stderr.String())
	}

	cmd, base, stderr, exited = startSyncProcess(t, srcSrv, dstSrv)
	interruptSync(t, cmd, base, stderr, exited)
	if !strings.Contains(stderr.String(), "resumed=true") {
		t.Errorf("second run did not resume the interrupted one:\n%s", stderr.String())
	}
}
