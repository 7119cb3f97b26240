package cptest

import (
	"context"
	"testing"

	"github.com/livemigrate/livemigrate/internal/agent"
)

// RunAgent runs an in-process agent with opts until stop is called or the
// test ends; stop waits for it and reports a failed run. Safe to call twice.
func RunAgent(t testing.TB, opts agent.Options) (stop func()) {
	t.Helper()
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
