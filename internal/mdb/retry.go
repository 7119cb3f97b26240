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

// Retry runs op until it succeeds, fails with a non-transient error, ctx
// ends, or the policy's time runs out. Each retry is logged at Warn. op must
// be idempotent.
func Retry(ctx context.Context, logger *slog.Logger, what string, p RetryPolicy, op func(context.Context) error) error {
	start := time.Now()
	delay := p.Initial
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		// While ctx is alive, a deadline inside err is the attempt's own (the
		// driver's connect or socket timeout, a blackholed network): retry it.
		if err == nil || !IsTransient(err) && (ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded)) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > p.MaxElapsed {
			return fmt.Errorf("%s: gave up after %d attempts in %s: %w", what, attempt, time.Since(start).Round(time.Second), err)
		}
		if logger != nil {
			logger.Warn("transient error, retrying", "op", what, "attempt", attempt, "delay", delay, "err", err)
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
