package engine

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
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

// DetectStartPoint returns the position change capture must start from:
// everything after it is applied later, everything before it is in the copy.
// It must be called before the copy reads any document. On a server that
// reports a cluster time (MongoDB replica set or mongos) that time is used;
// otherwise the server's clock (see StartOplogClock), or failing that the
// newest oplog entry's ts. The oplog reader on FerretDB replays from this
// point minus its settle window (entries become visible out of ts order),
// which is safe because applying changes is idempotent. A source without
// change history is refused with an error wrapping mdb.ErrNoChangeHistory.
func DetectStartPoint(ctx context.Context, src *mongo.Client) (StartPoint, error) {
	info, err := mdb.Probe(ctx, src)
	if err != nil {
		return StartPoint{}, fmt.Errorf("source: %w", err)
	}
	return StartPointFrom(ctx, src, info)
}

// StartPointFrom is DetectStartPoint with a probe of src already made
// (the preflight's): its cluster time or clock is from before the probe
// returned, so before any read that follows.
func StartPointFrom(ctx context.Context, src *mongo.Client, info mdb.ServerInfo) (StartPoint, error) {
	if err := info.ChangeHistory(); err != nil {
		return StartPoint{}, err
	}
	if info.HasClusterTime && info.Topology != mdb.Standalone {
		return StartPoint{Pos: migration.Position{TS: info.ClusterTime}, Method: StartClusterTime}, nil
	}
	if !info.LocalTime.IsZero() {
		return StartPoint{Pos: migration.Position{TS: bson.Timestamp{T: uint32(info.LocalTime.Unix())}}, Method: StartOplogClock}, nil
	}
	var entry struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err := src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&entry)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return StartPoint{}, fmt.Errorf("%w: local.oplog.rs is empty and the server reports no time", mdb.ErrNoChangeHistory)
	case err != nil:
		return StartPoint{}, fmt.Errorf("%w: read the newest entry of local.oplog.rs: %v", mdb.ErrNoChangeHistory, err)
	}
	return StartPoint{Pos: migration.Position{TS: entry.TS}, Method: StartOplog}, nil
}
