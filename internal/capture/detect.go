package capture

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
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
	// Oplog: local.oplog.rs exists and can be read.
	Oplog bool
	// history is why changes cannot be captured (nil when they can).
	history error
}

// DetectCapabilities asks the source what it is (mdb.Probe).
func DetectCapabilities(ctx context.Context, c *mongo.Client) (Capabilities, error) {
	info, err := mdb.Probe(ctx, c)
	if err != nil {
		return Capabilities{}, fmt.Errorf("source: %w", err)
	}
	return CapabilitiesOf(info), nil
}

// CapabilitiesOf is what info means for change capture.
func CapabilitiesOf(info mdb.ServerInfo) Capabilities {
	return Capabilities{
		Server:        info.Server(),
		FerretDB:      info.FerretDB != "",
		ReplicaSet:    info.Topology == mdb.ReplicaSet,
		Sharded:       info.Topology == mdb.Sharded,
		ChangeStreams: info.ChangeStreams,
		Oplog:         info.Oplog.Exists && info.Oplog.Readable,
		history:       info.ChangeHistory(),
	}
}

// DetectOptions are what the caller knows that the reader choice (ReaderFor) needs.
type DetectOptions struct {
	// Filter selects the namespaces in scope.
	Filter Filter
	// Replay is how far before the first from position an oplog reader on
	// FerretDB also sends entries (OplogOptions.Replay): a copy's start
	// point, after which entries may become visible out of order.
	Replay time.Duration
	// Baseline, for FerretDB's oplog reader, is the catalog its DDL
	// comparison starts from (OplogOptions.Baseline; default: the source's
	// catalog at Run).
	Baseline func(ctx context.Context) (Catalog, error)
	// CatalogEvery is how often FerretDB's catalog is compared (default
	// OplogOptions' default).
	CatalogEvery time.Duration
}

// ReaderFor picks the reader for a source with caps (DetectCapabilities): a
// change stream on MongoDB 6.0+, else the oplog (with FerretDB's recipe on
// FerretDB). The returned string says which and why, for reports.
func ReaderFor(c *mongo.Client, caps Capabilities, opts DetectOptions, logger *slog.Logger) (Reader, string, error) {
	switch {
	case caps.ChangeStreams:
		return NewChangeStreamReader(c, ChangeStreamOptions{Filter: opts.Filter}, logger),
			fmt.Sprintf("change stream reader: %s supports cluster-wide change streams with expanded events", caps.Server), nil
	case caps.Oplog && caps.FerretDB:
		r := NewOplogReader(c, OplogOptions{Filter: opts.Filter, FullImageUpdates: true, CatalogDDL: true, Settle: 2 * time.Second,
			Replay: opts.Replay, Baseline: opts.Baseline, CatalogEvery: opts.CatalogEvery}, logger)
		return r, fmt.Sprintf("oplog reader: %s has no change streams; its oplog logs full images and no DDL, "+
			"so entries settle for 2s and DDL is found by comparing the catalog", caps.Server), nil
	case caps.Oplog && !caps.Sharded:
		return NewOplogReader(c, OplogOptions{Filter: opts.Filter}, logger),
			fmt.Sprintf("oplog reader: %s predates change streams with expanded events", caps.Server), nil
	}
	if caps.history == nil {
		return nil, "", fmt.Errorf("%w: no reader for source %s", mdb.ErrNoChangeHistory, caps.Server)
	}
	return nil, "", caps.history
}
