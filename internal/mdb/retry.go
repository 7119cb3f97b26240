package mdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how long transient errors are retried.
type RetryPolicy struct {
	// MaxElapsed bounds the total time spent retrying one operation.
	MaxElapsed time.Duration
	// Initial and Max bound the exponential backoff between attempts.
	Initial, Max time.Duration
}

// DefaultRetry rides out a server restart or a network blackhole of a few minutes.
var DefaultRetry = RetryPolicy{MaxElapsed: 5 * time.Minute, Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// Retry runs op until it succeeds, fails with an error that is neither
// transient nor a lost cursor, ctx ends, or the policy's time runs out. Each
// retry is logged at Warn. op must be idempotent and open its cursors anew
// on every attempt: a cursor lost with a connection another operation
// closed (IsCursorLost) is then as worth retrying as the connection's loss.
func Retry(ctx context.Context, logger *slog.Logger, what string, p RetryPolicy, op func(context.Context) error) error {
	start := time.Now()
	delay := p.Initial
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		// While ctx is alive, a deadline inside err is the attempt's own (the
		// driver's connect or socket timeout, a blackholed network): retry it.
		if err == nil || !IsTransient(err) && !IsCursorLost(err) && (ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded)) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > p.MaxElapsed {
			return fmt.Errorf("%s: gave up after %d attempts in %s: %w", what, attempt, time.Since(start).Round(time.Second), err)
		}
		if logger != nil {
			logger.Warn("transient error or lost cursor, retrying", "op", what, "attempt", attempt, "delay", delay, "err", err)
		}
		jitter := time.Duration(rand.Int64N(int64(delay)/2 + 1))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay + jitter):
		}
		delay = min(delay*2, p.Max)
	}
}

// RetryEach is Retry with a deadline of its own for every attempt, so a
// silent network (a blackhole) cannot hang the caller: an attempt that
// outlives it while ctx is alive is transient and retried.
func RetryEach(ctx context.Context, logger *slog.Logger, what string, p RetryPolicy, attempt time.Duration, op func(context.Context) error) error {
	return Retry(ctx, logger, what, p, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, attempt)
		defer cancel()
		err := op(actx)
		if err != nil && ctx.Err() == nil && (actx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
			return attemptTimeout{what: what}
		}
		return err
	})
}

// attemptTimeout marks one attempt that outlived its own deadline while
// the caller's context is still alive: a net.Error, so transient.
type attemptTimeout struct{ what string }

func (e attemptTimeout) Error() string   { return e.what + ": no answer in time" }
func (e attemptTimeout) Timeout() bool   { return true }
func (e attemptTimeout) Temporary() bool { return true }
