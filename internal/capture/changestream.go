package capture

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

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
	return NewChangeStreamReaderFrom(&clientSource{c: c}, opts, logger)
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

// CommitPoint implements Reader: the cluster time (change streams carry
// DDL and are ordered, so Latest already is a commit point).
func (r *ChangeStreamReader) CommitPoint(ctx context.Context) (migration.Position, error) {
	return r.Latest(ctx)
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
			return fmt.Errorf("open change stream at %s: %w", migration.FormatTS(last.TS), err)
		}
		r.logger.Info("change stream opened", "ts", migration.FormatTS(last.TS), "resume_token", len(last.ResumeToken) > 0)
		// read returns only with an error: the stream ended or failed.
		err = r.read(ctx, stream, &last, out)
		_ = stream.Close(context.WithoutCancel(ctx))
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case mdb.IsHistoryLost(err):
			return &HistoryLostError{From: last}
		case mdb.IsTransient(err):
			r.logger.Warn("change stream interrupted, resuming", "ts", migration.FormatTS(last.TS), "err", err)
			continue
		default:
			return err
		}
	}
}

// errInvalidated ends a stream that reported invalidate.
var errInvalidated = errors.New("change stream invalidated")

func (r *ChangeStreamReader) read(ctx context.Context, s Stream, last *migration.Position, out chan<- migration.Event) error {
	var split fragments // an event split by $changeStreamSplitLargeEvent, until its last fragment
	for {
		if s.TryNext(ctx) {
			raw, complete, err := split.add(s.Current())
			if err != nil {
				return err
			}
			if !complete {
				continue // the checkpoint stays before the event until it is whole
			}
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
				return fmt.Errorf("%w at %s: restart the sync to resume after it", errInvalidated, migration.FormatTS(ev.Pos.TS))
			}
			continue
		}
		if err := s.Err(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// No event: the post-batch resume token still moves the checkpoint,
		// unless it points into a split event not yet complete.
		if split.pending() {
			continue
		}
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

// fragments reassembles an event that $changeStreamSplitLargeEvent split
// into fragments: each carries its own resume token as _id and
// splitEvent: {fragment: n, of: m}; the first holds the event's context
// (operationType, ns, documentKey, …), later ones the remaining top-level
// fields (fullDocument, updateDescription, …). The event is complete with
// fragment m, whose token resumes after the whole event; resuming from an
// earlier fragment's token would start mid-event, so the checkpoint never
// takes one.
type fragments struct {
	parts []bson.Raw
	of    int32
}

func (f *fragments) pending() bool { return len(f.parts) > 0 }

// add takes the next stream document. An event that was not split is
// returned as is; a fragment is kept until the last one, which returns the
// whole event (the fields of every fragment, _id the last fragment's).
func (f *fragments) add(raw bson.Raw) (bson.Raw, bool, error) {
	se, ok := raw.Lookup("splitEvent").DocumentOK()
	if !ok {
		if f.pending() {
			return nil, false, fmt.Errorf("change stream: an event arrived after fragment %d of %d of a split event; the stream is out of order, restart the sync to resume from its checkpoint", len(f.parts), f.of)
		}
		return raw, true, nil
	}
	n, ok1 := se.Lookup("fragment").AsInt64OK()
	of, ok2 := se.Lookup("of").AsInt64OK()
	if !ok1 || !ok2 || n < 1 || n > of {
		return nil, false, fmt.Errorf("change stream: malformed splitEvent %s", se)
	}
	if n == 1 {
		f.parts, f.of = f.parts[:0], int32(of)
	}
	if int64(len(f.parts)+1) != n || int64(f.of) != of {
		return nil, false, fmt.Errorf("change stream: fragment %d of %d arrived after fragment %d of %d; the stream is out of order, restart the sync to resume from its checkpoint", n, of, len(f.parts), f.of)
	}
	f.parts = append(f.parts, append(bson.Raw(nil), raw...))
	if n < of {
		return nil, false, nil
	}
	idx, doc := bsoncore.AppendDocumentStart(nil)
	doc = bsoncore.AppendDocumentElement(doc, "_id", raw.Lookup("_id").Document())
	for _, p := range f.parts {
		elems, err := p.Elements()
		if err != nil {
			return nil, false, fmt.Errorf("change stream: fragment %s: %w", p.Lookup("splitEvent"), err)
		}
		for _, e := range elems {
			if k := e.Key(); k != "_id" && k != "splitEvent" {
				doc = append(doc, e...)
			}
		}
	}
	doc, err := bsoncore.AppendDocumentEnd(doc, idx)
	f.parts, f.of = f.parts[:0], 0
	return bson.Raw(doc), err == nil, err
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
type clientSource struct {
	c *mongo.Client

	mu    sync.Mutex // guards known and split
	known bool
	split bool // the server has $changeStreamSplitLargeEvent
}

// SplitsLargeEvents reports whether a server of this version (buildInfo's
// "7.0.5") has $changeStreamSplitLargeEvent: 7.0 and later, 6.0.9 and later.
func SplitsLargeEvents(version string) bool {
	var v [3]int
	for i, part := range strings.SplitN(version, ".", 3) {
		digits := strings.TrimRightFunc(part, func(r rune) bool { return r < '0' || r > '9' })
		if i < 3 {
			v[i], _ = strconv.Atoi(strings.SplitN(digits, "-", 2)[0])
		}
	}
	return v[0] > 6 || v[0] == 6 && v[1] == 0 && v[2] >= 9
}

// pipeline is the stream's pipeline: user databases only and, where the
// server has it, $changeStreamSplitLargeEvent last, so an event over 16 MiB
// arrives in fragments instead of failing the stream.
func (s *clientSource) pipeline(ctx context.Context) (mongo.Pipeline, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		var bi struct {
			Version string `bson:"version"`
		}
		if err := s.c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
			return nil, fmt.Errorf("buildInfo on source: %w", err)
		}
		s.known, s.split = true, SplitsLargeEvents(bi.Version)
	}
	p := mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "ns.db", Value: bson.D{{Key: "$nin", Value: bson.A{"admin", "config", "local"}}}}}}}}
	if s.split {
		p = append(p, bson.D{{Key: "$changeStreamSplitLargeEvent", Value: bson.D{}}})
	}
	return p, nil
}

func (s *clientSource) Open(ctx context.Context, from migration.Position) (Stream, error) {
	opts := options.ChangeStream().SetShowExpandedEvents(true).SetMaxAwaitTime(time.Second).SetBatchSize(1000)
	if len(from.ResumeToken) > 0 {
		opts.SetResumeAfter(from.ResumeToken)
	} else {
		ts := from.TS
		opts.SetStartAtOperationTime(&ts)
	}
	pipeline, err := s.pipeline(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.c.Watch(ctx, pipeline, opts)
	if err != nil {
		return nil, err
	}
	return mongoStream{cs}, nil
}

func (s *clientSource) Latest(ctx context.Context) (migration.Position, error) {
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
