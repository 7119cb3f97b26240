package capture_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// After the poll that serves a commit point, the reader polls no more (on
// FerretDB a poll scans the whole oplog, which would compete with the
// drain) until a caller waits for a poll: Latest is still answered.
func TestOplogReaderIdlesAfterCommitPoint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := mongotest.Client(t, mongotest.StartSource(t))
	r := ferretReader(c, nil).(*capture.OplogReader)
	from, err := r.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan migration.Event, 64)
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx, from, out) }()
	if _, err := c.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	cp, err := r.CommitPoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for ev := range out {
		if ev.Op == migration.OpNoop && ev.Pos.TS == cp.TS {
			break
		}
	}
	// Lag with everything applied is the age of the last poll's read:
	// it grows while no poll runs (polls run every 100 ms otherwise).
	time.Sleep(1500 * time.Millisecond)
	if lag := r.Lag(cp, time.Now()); lag < 1500*time.Millisecond {
		t.Errorf("lag %s 1.5 s after the commit point: the reader kept polling", lag)
	}
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	defer lcancel()
	if _, err := r.Latest(lctx); err != nil {
		t.Fatalf("Latest after the commit point: %v", err)
	}
	if lag := r.Lag(cp, time.Now()); lag >= 1500*time.Millisecond {
		t.Errorf("lag %s after Latest: no poll served it", lag)
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}
