package capture_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/capture/capturetest"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// recorded is a change stream replaying event documents built in the shapes
// MongoDB 6.0+ documents for a cluster-wide stream with showExpandedEvents
// (https://www.mongodb.com/docs/manual/reference/change-events/). No server
// here offers change streams; this is how the reader is tested.
type recorded struct {
	mu      sync.Mutex
	events  []bson.Raw
	clock   uint32 // cluster time seconds
	inc     uint32
	trimmed int // events before this index are gone from the history
	colls   map[migration.Namespace]bool
}

func token(ts bson.Timestamp, n int) bson.Raw {
	raw, _ := bson.Marshal(bson.D{{Key: "_data", Value: fmt.Sprintf("82%08X%08X2B042C0100296E5A1004%032X04", ts.T, ts.I, n)}})
	return raw
}

func (r *recorded) add(d bson.D) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inc++
	ts := bson.Timestamp{T: r.clock, I: r.inc}
	uuid := bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}
	ev := bson.D{{Key: "_id", Value: token(ts, len(r.events))}}
	ev = append(ev, d[0]) // operationType
	ev = append(ev, bson.E{Key: "clusterTime", Value: ts}, bson.E{Key: "collectionUUID", Value: uuid},
		bson.E{Key: "wallTime", Value: bson.DateTime(int64(ts.T) * 1000)})
	ev = append(ev, d[1:]...)
	raw, _ := bson.Marshal(ev)
	r.events = append(r.events, raw)
}

func nsDoc(ns migration.Namespace) bson.D {
	return bson.D{{Key: "db", Value: ns.DB}, {Key: "coll", Value: ns.Coll}}
}

type recordedHarness struct{ rec *recorded }

func (h *recordedHarness) Reader(t *testing.T) capture.Reader {
	return capture.NewChangeStreamReaderFrom(h.rec, capture.ChangeStreamOptions{Filter: appOnly}, nil)
}

func (h *recordedHarness) Start(t *testing.T) migration.Position {
	p, err := h.rec.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.TS.I++ // startAtOperationTime is inclusive: start after the last event
	return p
}

func (h *recordedHarness) Do(t *testing.T, s capturetest.Step) {
	key := bson.D{{Key: "_id", Value: s.ID}}
	ns := bson.E{Key: "ns", Value: nsDoc(s.NS)}
	r := h.rec
	switch s.Kind {
	case capturetest.Insert:
		if !r.colls[s.NS] {
			r.colls[s.NS] = true
			r.add(bson.D{{Key: "operationType", Value: "create"}, ns,
				{Key: "operationDescription", Value: bson.D{{Key: "idIndex", Value: bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}}}}}})
		}
		r.add(bson.D{{Key: "operationType", Value: "insert"}, ns, {Key: "documentKey", Value: key},
			{Key: "fullDocument", Value: append(bson.D{{Key: "_id", Value: s.ID}}, s.Doc...)}})
	case capturetest.Update:
		removed := bson.A{}
		for _, f := range s.Unset {
			removed = append(removed, f)
		}
		r.add(bson.D{{Key: "operationType", Value: "update"}, ns, {Key: "documentKey", Value: key},
			{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: s.Set}, {Key: "removedFields", Value: removed}, {Key: "truncatedArrays", Value: bson.A{}}}}})
	case capturetest.Replace:
		r.add(bson.D{{Key: "operationType", Value: "replace"}, ns, {Key: "documentKey", Value: key},
			{Key: "fullDocument", Value: append(bson.D{{Key: "_id", Value: s.ID}}, s.Doc...)}})
	case capturetest.Delete:
		r.add(bson.D{{Key: "operationType", Value: "delete"}, ns, {Key: "documentKey", Value: key}})
	case capturetest.CreateColl:
		r.colls[s.NS] = true
		r.add(bson.D{{Key: "operationType", Value: "create"}, ns,
			{Key: "operationDescription", Value: bson.D{{Key: "idIndex", Value: bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}}}}}})
	case capturetest.DropColl:
		delete(r.colls, s.NS)
		r.add(bson.D{{Key: "operationType", Value: "drop"}, ns})
	case capturetest.CreateIndex, capturetest.DropIndex:
		op, name := "createIndexes", s.Index+"_1"
		key := bson.D{{Key: s.Index, Value: 1}}
		if s.Kind == capturetest.DropIndex {
			op, name = "dropIndexes", s.Index
			key = bson.D{{Key: s.Index[:len(s.Index)-2], Value: 1}}
		}
		r.add(bson.D{{Key: "operationType", Value: op}, ns,
			{Key: "operationDescription", Value: bson.D{{Key: "indexes", Value: bson.A{bson.D{{Key: "v", Value: 2}, {Key: "key", Value: key}, {Key: "name", Value: name}}}}}}})
	}
}

func (h *recordedHarness) Lost(t *testing.T) (capture.Reader, migration.Position) {
	for i := range int32(5) {
		h.Do(t, capturetest.Step{Kind: capturetest.Insert, NS: migration.Namespace{DB: "app", Coll: "lost"}, ID: i})
	}
	h.rec.mu.Lock()
	first := h.rec.events[1]
	h.rec.trimmed = 3
	h.rec.mu.Unlock()
	t1, i1 := first.Lookup("clusterTime").Timestamp()
	return h.Reader(t), migration.Position{TS: bson.Timestamp{T: t1, I: i1}, ResumeToken: first.Lookup("_id").Document()}
}

// Open implements capture.StreamSource.
func (r *recorded) Open(ctx context.Context, from migration.Position) (capture.Stream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	historyLost := mongo.CommandError{Code: 286, Name: "ChangeStreamHistoryLost", Message: "resume point may no longer be in the oplog"}
	if len(from.ResumeToken) > 0 {
		for i, ev := range r.events {
			if ev.Lookup("_id").Document().String() == from.ResumeToken.String() {
				if i < r.trimmed {
					return nil, historyLost
				}
				return &recordedStream{rec: r, next: i + 1}, nil
			}
		}
		return nil, historyLost
	}
	for i, ev := range r.events {
		t1, i1 := ev.Lookup("clusterTime").Timestamp()
		if migration.CompareTS(bson.Timestamp{T: t1, I: i1}, from.TS) >= 0 {
			if i < r.trimmed {
				return nil, historyLost
			}
			return &recordedStream{rec: r, next: i}, nil
		}
	}
	return &recordedStream{rec: r, next: len(r.events)}, nil
}

// Latest implements capture.StreamSource.
func (r *recorded) Latest(context.Context) (migration.Position, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return migration.Position{TS: bson.Timestamp{T: r.clock, I: r.inc}}, nil
}

type recordedStream struct {
	rec     *recorded
	next    int
	current bson.Raw
}

func (s *recordedStream) TryNext(ctx context.Context) bool {
	s.rec.mu.Lock()
	if s.next < len(s.rec.events) {
		s.current = s.rec.events[s.next]
		s.next++
		s.rec.mu.Unlock()
		return true
	}
	s.rec.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Millisecond):
	}
	return false
}

func (s *recordedStream) Current() bson.Raw { return s.current }
func (s *recordedStream) ResumeToken() bson.Raw {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if s.next > 0 {
		return s.rec.events[s.next-1].Lookup("_id").Document()
	}
	return token(bson.Timestamp{T: s.rec.clock, I: s.rec.inc}, -1)
}
func (s *recordedStream) Err() error                  { return nil }
func (s *recordedStream) Close(context.Context) error { return nil }

func TestChangeStreamReaderConformance(t *testing.T) {
	t.Parallel()
	capturetest.Run(t, func(t *testing.T) capturetest.Harness {
		return &recordedHarness{rec: &recorded{clock: 1_700_000_000, colls: map[migration.Namespace]bool{}}}
	})
}

func TestTokenTS(t *testing.T) {
	t.Parallel()
	ts, ok := capture.TokenTS(token(bson.Timestamp{T: 1651257835, I: 7}, 3))
	if !ok || ts != (bson.Timestamp{T: 1651257835, I: 7}) {
		t.Fatalf("TokenTS = %v, %v", ts, ok)
	}
}
