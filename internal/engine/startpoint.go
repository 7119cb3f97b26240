package engine

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// StartMethod says how a start point was found.
type StartMethod string

// Start methods.
const (
	// StartClusterTime is the operationTime of the source (MongoDB replica
	// sets and sharded clusters, where change streams start from it).
	StartClusterTime StartMethod = "clusterTime"
	// StartOplogClock is (server clock seconds, 0) on a replica set with an
	// oplog whose entries' ts is (unix seconds, counter) and that reports no
	// cluster time (FerretDB): no entry written after the start point can
	// order before it, and it costs one round trip where reading the newest
	// entry is a full scan plus an in-memory sort of the oplog.
	StartOplogClock StartMethod = "oplogClock"
	// StartOplog is the ts of the newest local.oplog.rs entry, used when the
	// server reports no clock.
	StartOplog StartMethod = "oplog"
)

// StartPoint is where change capture starts.
type StartPoint struct {
	Pos    migration.Position
	Method StartMethod
}

// ErrNoChangeHistory is returned for a source whose changes cannot be
// captured (a standalone server without an oplog).
var ErrNoChangeHistory = errors.New("the source keeps no change history")

// DetectStartPoint returns the position change capture must start from:
// everything after it is applied later, everything before it is in the copy.
// It must be called before the copy reads any document. On a server that
// reports an operationTime (MongoDB replica set or mongos) that time is used;
// otherwise the server's clock (see StartOplogClock), or failing that the
// newest oplog entry's ts. The oplog reader on FerretDB replays
// from this point minus its settle window (entries become visible out of ts
// order), which is safe because applying changes is idempotent.
func DetectStartPoint(ctx context.Context, src *mongo.Client) (StartPoint, error) {
	raw, err := src.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		return StartPoint{}, fmt.Errorf("hello on the source: %w", err)
	}
	_, isRS := raw.Lookup("setName").StringValueOK()
	msg, _ := raw.Lookup("msg").StringValueOK()
	if t, i, ok := raw.Lookup("operationTime").TimestampOK(); ok && (isRS || msg == "isdbgrid") {
		return StartPoint{Pos: migration.Position{TS: bson.Timestamp{T: t, I: i}}, Method: StartClusterTime}, nil
	}
	if !isRS {
		return StartPoint{}, fmt.Errorf("%w: it is a standalone server; live migration needs a replica set (or sharded cluster) so changes made during the copy can be captured", ErrNoChangeHistory)
	}
	if err := src.Database("local").RunCommand(ctx, bson.D{{Key: "find", Value: "oplog.rs"}, {Key: "limit", Value: 1},
		{Key: "projection", Value: bson.D{{Key: "ts", Value: 1}}}}).Err(); err != nil {
		return StartPoint{}, fmt.Errorf("%w: read local.oplog.rs: %v", ErrNoChangeHistory, err)
	}
	if lt, ok := raw.Lookup("localTime").DateTimeOK(); ok {
		return StartPoint{Pos: migration.Position{TS: bson.Timestamp{T: uint32(lt / 1000)}}, Method: StartOplogClock}, nil
	}
	var entry struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err = src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&entry)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return StartPoint{}, fmt.Errorf("%w: local.oplog.rs is empty and the server reports no time", ErrNoChangeHistory)
	case err != nil:
		return StartPoint{}, fmt.Errorf("%w: read the newest entry of local.oplog.rs: %v", ErrNoChangeHistory, err)
	}
	return StartPoint{Pos: migration.Position{TS: entry.TS}, Method: StartOplog}, nil
}
