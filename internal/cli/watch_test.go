package cli

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/client"
)

// script returns a fetch that plays the given observations (or errors) in order.
func script(steps ...any) func(context.Context) (Observation[int], error) {
	i := 0
	return func(context.Context) (Observation[int], error) {
		s := steps[min(i, len(steps)-1)]
		i++
		if err, ok := s.(error); ok {
			return Observation[int]{}, err
		}
		return s.(Observation[int]), nil
	}
}

func obs(v int, state string) Observation[int] {
	return Observation[int]{Value: v, State: state, Line: "at " + state + " " + string(rune('0'+v))}
}

func TestWatchUntilStateChanges(t *testing.T) {
	var out strings.Builder
	fetch := script(obs(1, "A"), obs(1, "A"), obs(2, "A"), errors.New("connection refused"), obs(3, "B"), obs(4, "C"))
	v, err := Watch(t.Context(), time.Millisecond, &out, false, fetch)
	if err != nil || v != 3 {
		t.Fatalf("Watch = %d, %v; want 3 (first observation in a new state)", v, err)
	}
	want := "at A 1\nat A 2\ncontrol plane unreachable (connection refused); retrying\nat B 3\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

func TestWatchTerminalRedraws(t *testing.T) {
	var out strings.Builder
	v, err := Watch(t.Context(), time.Millisecond, &out, true, script(obs(1, "A"), obs(2, "B")))
	if err != nil || v != 2 {
		t.Fatalf("Watch = %d, %v", v, err)
	}
	if want := "\r\033[Kat A 1\r\033[Kat B 2\n"; out.String() != want {
		t.Errorf("terminal output = %q, want %q", out.String(), want)
	}
}

func TestWatchStops(t *testing.T) {
	final := obs(7, "DONE")
	final.Final = true
	if v, err := Watch(t.Context(), time.Hour, &strings.Builder{}, false, script(final)); err != nil || v != 7 {
		t.Errorf("Watch of a final resource = %d, %v; want 7 at once", v, err)
	}
	apiErr := &client.APIError{StatusCode: http.StatusNotFound, ErrorCode: "RESOURCE_NOT_FOUND"}
	if _, err := Watch(t.Context(), time.Millisecond, &strings.Builder{}, false, script(obs(1, "A"), apiErr)); !errors.Is(err, apiErr) {
		t.Errorf("Watch after an API error = %v, want it", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := Watch(ctx, time.Millisecond, &strings.Builder{}, false, script(obs(1, "A"))); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Watch until ctx ends = %v, want DeadlineExceeded", err)
	}
}
