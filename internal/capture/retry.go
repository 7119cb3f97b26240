package capture

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/livemigrate/livemigrate/internal/mdb"
)

// attemptTimeout marks one attempt that outlived its own deadline (a
// network blackhole) while the caller's context is still alive: transient.
type attemptTimeout struct{ what string }

func (e attemptTimeout) Error() string   { return e.what + ": no answer in time" }
func (e attemptTimeout) Timeout() bool   { return true }
func (e attemptTimeout) Temporary() bool { return true }

// retry runs op under mdb.Retry, giving each attempt its own deadline so a
// silent network cannot hang the reader forever.
func retry(ctx context.Context, logger *slog.Logger, what string, policy mdb.RetryPolicy, attempt time.Duration, op func(context.Context) error) error {
	return mdb.Retry(ctx, logger, what, policy, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, attempt)
		defer cancel()
		err := op(actx)
		if err != nil && ctx.Err() == nil && (actx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
			return attemptTimeout{what: what}
		}
		return err
	})
}
