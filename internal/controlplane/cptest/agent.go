package cptest

import (
	"context"
	"sync"
	"testing"

	"github.com/livemigrate/livemigrate/internal/agent"
)

// stateDirs is each test's agent state directory, so that an agent the
// test starts again keeps its credential, as on a real host.
var stateDirs sync.Map // testing.TB → string

// RunAgent runs an in-process agent with opts until stop is called or the
// test ends; stop waits for it and reports a failed run. Safe to call twice.
// Without opts.StateDir, every agent of the test shares one state
// directory (one per hostname's credential file).
func RunAgent(t testing.TB, opts agent.Options) (stop func()) {
	t.Helper()
	if opts.StateDir == "" {
		dir, _ := stateDirs.LoadOrStore(t, t.TempDir())
		opts.StateDir = dir.(string)
	}
	a, err := agent.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}
