package mdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// A driver error wrapping context.DeadlineExceeded while the caller's
// context is alive is the attempt's own timeout (seen as "connection
// handshake ... context deadline exceeded" during a network blackhole):
// retried. Once the caller's context is done, it is not.
func TestRetryAttemptDeadline(t *testing.T) {
	p := RetryPolicy{MaxElapsed: time.Minute, Initial: time.Millisecond, Max: time.Millisecond}
	attempts := 0
	err := Retry(context.Background(), nil, "op", p, func(context.Context) error {
		attempts++
		if attempts < 3 {
			return fmt.Errorf("connection() error occurred during connection handshake: %w", context.DeadlineExceeded)
		}
		return nil
	})
	if err != nil || attempts != 3 {
		t.Fatalf("Retry = %v after %d attempts, want nil after 3", err, attempts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	attempts = 0
	err = Retry(ctx, nil, "op", p, func(ctx context.Context) error {
		attempts++
		<-ctx.Done()
		return fmt.Errorf("read: %w", ctx.Err())
	})
	if !errors.Is(err, context.DeadlineExceeded) || attempts != 1 {
		t.Fatalf("Retry = %v after %d attempts, want the caller's deadline after 1", err, attempts)
	}

	attempts = 0
	err = Retry(context.Background(), nil, "op", p, func(context.Context) error {
		attempts++
		return errors.New("bad value")
	})
	if err == nil || attempts != 1 {
		t.Fatalf("Retry = %v after %d attempts, want the permanent error after 1", err, attempts)
	}
}

// An attempt that hangs past its own deadline is retried; one that hangs
// past the caller's ends the retries with the caller's error.
func TestRetryEachBoundsAnAttempt(t *testing.T) {
	p := RetryPolicy{MaxElapsed: time.Minute, Initial: time.Millisecond, Max: time.Millisecond}
	attempts := 0
	err := RetryEach(context.Background(), nil, "op", p, 10*time.Millisecond, func(ctx context.Context) error {
		attempts++
		if attempts == 1 {
			<-ctx.Done() // a blackhole: no answer until the attempt's deadline
			return ctx.Err()
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("RetryEach = %v after %d attempts, want nil after 2", err, attempts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	attempts = 0
	err = RetryEach(ctx, nil, "op", p, time.Hour, func(ctx context.Context) error {
		attempts++
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) || attempts != 1 {
		t.Fatalf("RetryEach = %v after %d attempts, want the caller's deadline after 1", err, attempts)
	}

	p.MaxElapsed = 50 * time.Millisecond
	err = RetryEach(context.Background(), nil, "poll", p, 5*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "poll: no answer in time") {
		t.Fatalf("RetryEach of an attempt that never answers = %v, want the attempt timeout after giving up", err)
	}
}
