package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/livemigrate/livemigrate/internal/client"
)

// Observation is one look at a watched resource.
type Observation[T any] struct {
	Value T
	// State is compared between polls: the watch ends when it changes.
	State string
	// Final is true when the resource cannot change any more (COMPLETE, FAILED…).
	Final bool
	// Line is the progress line shown for this observation.
	Line string
}

// Watch polls fetch every interval and shows each observation's Line on out
// until the State differs from the first observation's, or an observation is
// Final. On a terminal (tty) the line is redrawn in place; otherwise a line is
// printed each time it changes. Errors the control plane answered end the
// watch; transport errors (control plane restarting) are shown and retried
// until ctx ends. It returns the last observation.
func Watch[T any](ctx context.Context, interval time.Duration, out io.Writer, tty bool, fetch func(context.Context) (Observation[T], error)) (T, error) {
	var (
		first    *Observation[T]
		lastLine string
		drawn    bool
	)
	show := func(line string) {
		if line == lastLine {
			return
		}
		lastLine = line
		if tty {
			fmt.Fprintf(out, "\r\033[K%s", line)
			drawn = true
		} else {
			fmt.Fprintln(out, line)
		}
	}
	finish := func() {
		if drawn {
			fmt.Fprintln(out)
		}
	}
	for {
		o, err := fetch(ctx)
		var ae *client.APIError
		switch {
		case err == nil:
		case errors.As(err, &ae) || ctx.Err() != nil:
			finish()
			var zero T
			return zero, err
		default:
			show(fmt.Sprintf("control plane unreachable (%v); retrying", err))
		}
		if err == nil {
			show(o.Line)
			if first == nil {
				first = &o
			}
			if o.Final || o.State != first.State {
				finish()
				return o.Value, nil
			}
		}
		select {
		case <-ctx.Done():
			finish()
			var zero T
			return zero, ctx.Err()
		case <-time.After(interval):
		}
	}
}
