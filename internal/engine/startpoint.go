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
	// StartOplog is the ts of the newest local.oplog.rs entry (FerretDB and
	// other servers with an oplog but no cluster time).
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
// otherwise the newest oplog entry's ts. The oplog reader on FerretDB replays
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
	var entry struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err = src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&entry)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		// An empty oplog: everything written from now on is after the start.
		// Use the server's clock with counter 0 (entries carry (seconds, counter)).
		lt, ok := raw.Lookup("localTime").DateTimeOK()
		if !ok {
			return StartPoint{}, fmt.Errorf("%w: local.oplog.rs is empty and the server reports no time", ErrNoChangeHistory)
		}
		return StartPoint{Pos: migration.Position{TS: bson.Timestamp{T: uint32(lt / 1000)}}, Method: StartOplog}, nil
	case err != nil:
		return StartPoint{}, fmt.Errorf("%w: read the newest entry of local.oplog.rs: %v", ErrNoChangeHistory, err)
	}
	return StartPoint{Pos: migration.Position{TS: entry.TS}, Method: StartOplog}, nil
}
