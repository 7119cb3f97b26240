package capture

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Stream is an open change stream. *mongo.ChangeStream satisfies it through
// the live StreamSource; tests feed recorded event documents through their own.
type Stream interface {
	// TryNext reads the next event into Current, waiting at most the
	// stream's await time; false with a nil Err means none yet.
	TryNext(ctx context.Context) bool
	// Current is the event TryNext read.
	Current() bson.Raw
	// ResumeToken is the token to resume after the last event read or, with
	// no event, the server's post-batch resume token (a high-water mark).
	ResumeToken() bson.Raw
	Err() error
	Close(ctx context.Context) error
}

// StreamSource opens cluster-wide change streams and reports the newest
// cluster time.
type StreamSource interface {
	// Open starts a stream after from.ResumeToken or, without one, at
	// from.TS (inclusive).
	Open(ctx context.Context, from migration.Position) (Stream, error)
	// Latest returns the source's current cluster time.
	Latest(ctx context.Context) (migration.Position, error)
}

// ChangeStreamOptions configures a ChangeStreamReader.
type ChangeStreamOptions struct {
	// Filter selects the namespaces in scope (default InScope("")).
	Filter Filter
	// Retry bounds retries of transient errors (default mdb.DefaultRetry).
	Retry mdb.RetryPolicy
}

// ChangeStreamReader reads a cluster-wide change stream with
// showExpandedEvents (MongoDB 6.0+).
type ChangeStreamReader struct {
	src    StreamSource
	opts   ChangeStreamOptions
	logger *slog.Logger
}

// NewChangeStreamReader returns a reader of c's cluster-wide change stream.
func NewChangeStreamReader(c *mongo.Client, opts ChangeStreamOptions, logger *slog.Logger) *ChangeStreamReader {
	return NewChangeStreamReaderFrom(clientSource{c: c}, opts, logger)
}

// NewChangeStreamReaderFrom returns a reader over any StreamSource (the
// conformance suite feeds recorded MongoDB event documents through it).
func NewChangeStreamReaderFrom(src StreamSource, opts ChangeStreamOptions, logger *slog.Logger) *ChangeStreamReader {
	if opts.Filter == nil {
		opts.Filter = InScope("")
	}
	if opts.Retry == (mdb.RetryPolicy{}) {
		opts.Retry = mdb.DefaultRetry
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ChangeStreamReader{src: src, opts: opts, logger: logger.With("component", "capture", "reader", "change stream")}
}

// Kind implements Reader.
func (r *ChangeStreamReader) Kind() Kind { return KindChangeStream }

// Latest implements Reader.
func (r *ChangeStreamReader) Latest(ctx context.Context) (migration.Position, error) {
	var pos migration.Position
	err := mdb.Retry(ctx, r.logger, "read cluster time", r.opts.Retry, func(ctx context.Context) error {
		var err error
		pos, err = r.src.Latest(ctx)
		return err
	})
	return pos, err
}

// Run implements Reader. It reopens the stream after transient errors from
// the last position it sent.
func (r *ChangeStreamReader) Run(ctx context.Context, from migration.Position, out chan<- migration.Event) error {
	defer close(out)
	if from.IsZero() {
		p, err := r.Latest(ctx)
		if err != nil {
			return err
		}
		from = p
	}
	last := from
	for {
		var stream Stream
		err := mdb.Retry(ctx, r.logger, "open change stream", r.opts.Retry, func(ctx context.Context) error {
			var err error
			stream, err = r.src.Open(ctx, last)
			return err
		})
		if err != nil {
			if mdb.IsHistoryLost(err) {
				return &HistoryLostError{From: last}
			}
			return fmt.Errorf("open change stream at %s: %w", fmtTS(last.TS), err)
		}
		r.logger.Info("change stream opened", "ts", fmtTS(last.TS), "resume_token", len(last.ResumeToken) > 0)
		err = r.read(ctx, stream, &last, out)
		_ = stream.Close(context.WithoutCancel(ctx))
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case mdb.IsHistoryLost(err):
			return &HistoryLostError{From: last}
		case mdb.IsTransient(err):
			r.logger.Warn("change stream interrupted, resuming", "ts", fmtTS(last.TS), "err", err)
			continue
		default:
			return err
		}
	}
}

// errInvalidated ends a stream that reported invalidate.
var errInvalidated = errors.New("change stream invalidated")

func (r *ChangeStreamReader) read(ctx context.Context, s Stream, last *migration.Position, out chan<- migration.Event) error {
	for {
		if s.TryNext(ctx) {
			raw := s.Current()
			ev, err := parseChangeEvent(raw)
			if err != nil {
				return err
			}
			ev.Pos.ResumeToken = append(bson.Raw(nil), s.ResumeToken()...)
			keep := r.opts.Filter(ev.NS) || (ev.Op == migration.OpRename && r.opts.Filter(ev.To)) || ev.Op == migration.OpNoop
			if ev.Op == migration.OpRename && r.opts.Filter(ev.NS) && !r.opts.Filter(ev.To) {
				ev = migration.Event{Op: migration.OpDrop, NS: ev.NS, Pos: ev.Pos, Wall: ev.Wall}
			}
			if ev.Op == migration.OpRename && !r.opts.Filter(ev.NS) && r.opts.Filter(ev.To) {
				return fmt.Errorf("collection renamed into scope from %s to %s: its documents were never captured; restart the migration", ev.NS, ev.To)
			}
			if !keep {
				ev = migration.Event{Op: migration.OpNoop, Pos: ev.Pos, Wall: ev.Wall}
			}
			if err := send(ctx, out, ev); err != nil {
				return err
			}
			*last = ev.Pos
			if ev.Op == migration.OpInvalidate {
				return fmt.Errorf("%w at %s: restart the sync to resume after it", errInvalidated, fmtTS(ev.Pos.TS))
			}
			continue
		}
		if err := s.Err(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// No event: the post-batch resume token still moves the checkpoint.
		tok := s.ResumeToken()
		if ts, ok := TokenTS(tok); ok && migration.CompareTS(ts, last.TS) > 0 {
			p := migration.Position{TS: ts, ResumeToken: append(bson.Raw(nil), tok...)}
			if err := send(ctx, out, migration.Event{Op: migration.OpNoop, Pos: p, Wall: time.Now()}); err != nil {
				return err
			}
			*last = p
		}
	}
}

// changeEvent is a change stream event document.
type changeEvent struct {
	OperationType     string              `bson:"operationType"`
	ClusterTime       bson.Timestamp      `bson:"clusterTime"`
	WallTime          time.Time           `bson:"wallTime"`
	NS                migration.Namespace `bson:"ns"`
	To                migration.Namespace `bson:"to"`
	DocumentKey       bson.Raw            `bson:"documentKey"`
	FullDocument      bson.Raw            `bson:"fullDocument"`
	UpdateDescription *struct {
		UpdatedFields   bson.Raw                   `bson:"updatedFields"`
		RemovedFields   []string                   `bson:"removedFields"`
		TruncatedArrays []migration.TruncatedArray `bson:"truncatedArrays"`
	} `bson:"updateDescription"`
	OperationDescription bson.Raw `bson:"operationDescription"`
}

// parseChangeEvent normalizes one change event (documented shapes of
// MongoDB 6.0+ with showExpandedEvents). Position.ResumeToken is set by the caller.
func parseChangeEvent(raw bson.Raw) (migration.Event, error) {
	var ce changeEvent
	if err := bson.Unmarshal(raw, &ce); err != nil {
		return migration.Event{}, fmt.Errorf("decode change event: %w", err)
	}
	ev := migration.Event{NS: ce.NS, Pos: migration.Position{TS: ce.ClusterTime}, Wall: ce.WallTime}
	desc := ce.OperationDescription
	switch ce.OperationType {
	case "insert":
		ev.Op, ev.DocumentKey, ev.FullDocument = migration.OpInsert, ce.DocumentKey, ce.FullDocument
	case "replace":
		ev.Op, ev.DocumentKey, ev.FullDocument = migration.OpReplace, ce.DocumentKey, ce.FullDocument
	case "update":
		ev.Op, ev.DocumentKey = migration.OpUpdate, ce.DocumentKey
		if ce.UpdateDescription == nil {
			return ev, fmt.Errorf("update event on %s without updateDescription", ce.NS)
		}
		ev.Update = &migration.UpdateDescription{
			UpdatedFields:   ce.UpdateDescription.UpdatedFields,
			RemovedFields:   ce.UpdateDescription.RemovedFields,
			TruncatedArrays: ce.UpdateDescription.TruncatedArrays,
		}
	case "delete":
		ev.Op, ev.DocumentKey = migration.OpDelete, ce.DocumentKey
	case "create":
		ev.Op = migration.OpCreate
		if len(desc) > 0 {
			opts, err := withoutKeys(desc, "idIndex")
			if err != nil {
				return ev, err
			}
			ev.Options = opts
		}
	case "createIndexes", "dropIndexes":
		ev.Op = migration.OpCreateIndexes
		if ce.OperationType == "dropIndexes" {
			ev.Op = migration.OpDropIndexes
		}
		arr, ok := desc.Lookup("indexes").ArrayOK()
		if !ok {
			return ev, fmt.Errorf("%s event on %s without operationDescription.indexes", ce.OperationType, ce.NS)
		}
		vals, _ := arr.Values()
		for _, v := range vals {
			spec, err := withoutKeys(v.Document(), "v", "ns")
			if err != nil {
				return ev, err
			}
			if ev.Op == migration.OpCreateIndexes {
				ev.Indexes = append(ev.Indexes, spec)
			} else {
				ev.IndexNames = append(ev.IndexNames, spec.Lookup("name").StringValue())
			}
		}
	case "drop":
		ev.Op = migration.OpDrop
	case "rename":
		ev.Op, ev.To = migration.OpRename, ce.To
		if ev.To.IsZero() {
			if to, ok := desc.Lookup("to").DocumentOK(); ok {
				_ = bson.Unmarshal(to, &ev.To)
			}
		}
	case "dropDatabase":
		ev.Op, ev.NS = migration.OpDropDatabase, migration.Namespace{DB: ce.NS.DB}
	case "modify":
		ev.Op, ev.Options = migration.OpModify, desc
	case "invalidate":
		ev.Op = migration.OpInvalidate
	case "shardCollection", "reshardCollection", "refineCollectionShardKey":
		ev.Op = migration.OpNoop
	default:
		return ev, fmt.Errorf("change event of unknown type %q on %s", ce.OperationType, ce.NS)
	}
	return ev, nil
}

// TokenTS decodes the cluster time at the front of a resume token's _data
// (KeyString: type byte 0x82 then the timestamp as 8 big-endian bytes).
func TokenTS(token bson.Raw) (bson.Timestamp, bool) {
	data, ok := token.Lookup("_data").StringValueOK()
	if !ok || len(data) < 18 || data[:2] != "82" {
		return bson.Timestamp{}, false
	}
	b, err := hex.DecodeString(data[2:18])
	if err != nil {
		return bson.Timestamp{}, false
	}
	v := binary.BigEndian.Uint64(b)
	return bson.Timestamp{T: uint32(v >> 32), I: uint32(v)}, true
}

// clientSource opens live change streams on a MongoDB deployment.
type clientSource struct{ c *mongo.Client }

func (s clientSource) Open(ctx context.Context, from migration.Position) (Stream, error) {
	opts := options.ChangeStream().SetShowExpandedEvents(true).SetMaxAwaitTime(time.Second).SetBatchSize(1000)
	if len(from.ResumeToken) > 0 {
		opts.SetResumeAfter(from.ResumeToken)
	} else {
		ts := from.TS
		opts.SetStartAtOperationTime(&ts)
	}
	pipeline := mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "ns.db", Value: bson.D{{Key: "$nin", Value: bson.A{"admin", "config", "local"}}}}}}}}
	cs, err := s.c.Watch(ctx, pipeline, opts)
	if err != nil {
		return nil, err
	}
	return mongoStream{cs}, nil
}

func (s clientSource) Latest(ctx context.Context) (migration.Position, error) {
	var hello struct {
		OperationTime bson.Timestamp `bson:"operationTime"`
		ClusterTime   struct {
			ClusterTime bson.Timestamp `bson:"clusterTime"`
		} `bson:"$clusterTime"`
	}
	if err := s.c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return migration.Position{}, fmt.Errorf("read cluster time: %w", err)
	}
	ts := hello.OperationTime
	if migration.CompareTS(hello.ClusterTime.ClusterTime, ts) > 0 {
		ts = hello.ClusterTime.ClusterTime
	}
	return migration.Position{TS: ts}, nil
}

type mongoStream struct{ cs *mongo.ChangeStream }

func (m mongoStream) TryNext(ctx context.Context) bool { return m.cs.TryNext(ctx) }
func (m mongoStream) Current() bson.Raw                { return m.cs.Current }
func (m mongoStream) ResumeToken() bson.Raw            { return m.cs.ResumeToken() }
func (m mongoStream) Err() error                       { return m.cs.Err() }
func (m mongoStream) Close(ctx context.Context) error  { return m.cs.Close(ctx) }
