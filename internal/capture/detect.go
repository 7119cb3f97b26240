package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Capabilities is what Detect learned about a source.
type Capabilities struct {
	// Server is "MongoDB 7.0.5" or "FerretDB v1.24.2".
	Server string
	// FerretDB is true for FerretDB (full-image updates, no DDL in the
	// oplog, out-of-order visibility, no change streams).
	FerretDB bool
	// ReplicaSet or Sharded: sources with change history.
	ReplicaSet, Sharded bool
	// ChangeStreams: MongoDB 6.0+ replica set or sharded cluster.
	ChangeStreams bool
	// Oplog: local.oplog.rs exists.
	Oplog bool
}

// ErrNoChangeHistory says the source keeps no change history to follow.
var ErrNoChangeHistory = errors.New("the source keeps no change history (it is a standalone server): " +
	"live migration needs a replica set or sharded cluster; convert the source to a one-member replica set " +
	"(start it with --replSet and run rs.initiate()) and try again")

// DetectCapabilities asks the source what it is.
func DetectCapabilities(ctx context.Context, c *mongo.Client) (Capabilities, error) {
	var caps Capabilities
	var bi struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		return caps, fmt.Errorf("buildInfo on source: %w", err)
	}
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return caps, fmt.Errorf("hello on source: %w", err)
	}
	caps.ReplicaSet, caps.Sharded = hello.SetName != "", hello.Msg == "isdbgrid"
	if bi.FerretDBVersion != "" {
		caps.FerretDB, caps.Server = true, "FerretDB "+bi.FerretDBVersion
	} else {
		caps.Server = "MongoDB " + bi.Version
		major, _ := strconv.Atoi(strings.Split(bi.Version, ".")[0])
		caps.ChangeStreams = major >= 6 && (caps.ReplicaSet || caps.Sharded)
	}
	names, err := c.Database("local").ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err == nil && len(names) == 1 {
		caps.Oplog = true
	}
	return caps, nil
}

// Detect picks the reader for the source: a change stream on MongoDB 6.0+,
// else the oplog (with FerretDB's recipe on FerretDB). The returned string
// says which and why, for reports.
func Detect(ctx context.Context, c *mongo.Client, filter Filter, logger *slog.Logger) (Reader, Capabilities, string, error) {
	caps, err := DetectCapabilities(ctx, c)
	if err != nil {
		return nil, caps, "", err
	}
	switch {
	case caps.ChangeStreams:
		return NewChangeStreamReader(c, ChangeStreamOptions{Filter: filter}, logger), caps,
			fmt.Sprintf("change stream reader: %s supports cluster-wide change streams with expanded events", caps.Server), nil
	case caps.Oplog && caps.FerretDB:
		r := NewOplogReader(c, OplogOptions{Filter: filter, FullImageUpdates: true, CatalogDDL: true, Settle: 2 * time.Second}, logger)
		return r, caps, fmt.Sprintf("oplog reader: %s has no change streams; its oplog logs full images and no DDL, "+
			"so entries settle for 2s and DDL is found by comparing the catalog", caps.Server), nil
	case caps.Oplog && !caps.Sharded:
		return NewOplogReader(c, OplogOptions{Filter: filter}, logger), caps,
			fmt.Sprintf("oplog reader: %s predates change streams with expanded events", caps.Server), nil
	case caps.Sharded:
		return nil, caps, "", fmt.Errorf("source %s is a sharded cluster without change streams with expanded events: upgrade it to MongoDB 6.0 or later", caps.Server)
	}
	return nil, caps, "", ErrNoChangeHistory
}
