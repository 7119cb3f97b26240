package capture_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/capture/capturetest"
	"github.com/livemigrate/livemigrate/internal/mdb"
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
	// pauseAt: TryNext reports no event once before the event at this
	// index (a batch boundary); failAt: the stream fails with a transient
	// error once before it (0 = never).
	pauseAt, failAt int
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

// addSplit records one event as $changeStreamSplitLargeEvent returns it:
// fragment 1 holds every field but those of later, each later fragment the
// fields named in its group; every fragment has its own resume token as _id
// (the same cluster time) and splitEvent {fragment, of}. It returns the
// index of the first fragment.
func (r *recorded) addSplit(d bson.D, later ...[]string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inc++
	ts := bson.Timestamp{T: r.clock, I: r.inc}
	full := append(bson.D{d[0], {Key: "clusterTime", Value: ts}, {Key: "wallTime", Value: bson.DateTime(int64(ts.T) * 1000)}}, d[1:]...)
	of := int32(len(later) + 1)
	groups := make([]bson.D, of)
	for _, e := range full {
		g := 0
		for i, keys := range later {
			if slices.Contains(keys, e.Key) {
				g = i + 1
			}
		}
		groups[g] = append(groups[g], e)
	}
	first := len(r.events)
	for i, g := range groups {
		frag := bson.D{{Key: "_id", Value: token(ts, len(r.events))},
			{Key: "splitEvent", Value: bson.D{{Key: "fragment", Value: int32(i + 1)}, {Key: "of", Value: of}}}}
		raw, _ := bson.Marshal(append(frag, g...))
		r.events = append(r.events, raw)
	}
	return first
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
	err     error
}

func (s *recordedStream) TryNext(ctx context.Context) bool {
	s.rec.mu.Lock()
	if s.next > 0 && s.next == s.rec.failAt {
		s.rec.failAt, s.err = 0, mongo.CommandError{Code: 91, Name: "ShutdownInProgress", Message: "recorded: the server is shutting down"}
		s.rec.mu.Unlock()
		return false
	}
	if s.next > 0 && s.next == s.rec.pauseAt {
		s.rec.pauseAt = 0
		s.rec.mu.Unlock()
		return false
	}
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
func (s *recordedStream) Err() error                  { return s.err }
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

// TestChangeStreamSplitEvents: events split by $changeStreamSplitLargeEvent
// (a 2-fragment insert, a 3-fragment replace with a pre-image, a 2-fragment
// update) are reassembled into one event each, in order, once; a batch
// boundary between fragments does not move the checkpoint into the event;
// a stream that fails between fragments resumes from the last complete
// event and the event arrives whole, once.
func TestChangeStreamSplitEvents(t *testing.T) {
	t.Parallel()
	rec := &recorded{clock: 1_700_000_000, colls: map[migration.Namespace]bool{}}
	h := &recordedHarness{rec: rec}
	big := migration.Namespace{DB: "app", Coll: "big"}
	ns := bson.E{Key: "ns", Value: nsDoc(big)}
	start := h.Start(t)
	h.Do(t, capturetest.Step{Kind: capturetest.Insert, NS: big, ID: 1, Doc: bson.D{{Key: "v", Value: 1}}})
	pad := strings.Repeat("p", 1<<20)
	bigDoc := bson.D{{Key: "_id", Value: "b"}, {Key: "pad", Value: pad}}
	key := func(id string) bson.E { return bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}} }
	insertAt := rec.addSplit(bson.D{{Key: "operationType", Value: "insert"}, ns, key("b"), {Key: "fullDocument", Value: bigDoc}}, []string{"fullDocument"})
	replaced := bson.D{{Key: "_id", Value: "b"}, {Key: "pad", Value: pad + "r"}}
	replaceAt := rec.addSplit(bson.D{{Key: "operationType", Value: "replace"}, ns, key("b"),
		{Key: "fullDocumentBeforeChange", Value: bigDoc}, {Key: "fullDocument", Value: replaced}},
		[]string{"fullDocumentBeforeChange"}, []string{"fullDocument"})
	updateAt := rec.addSplit(bson.D{{Key: "operationType", Value: "update"}, ns, key("b"),
		{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "pad", Value: pad + "u"}}}, {Key: "removedFields", Value: bson.A{}}, {Key: "truncatedArrays", Value: bson.A{}}}}},
		[]string{"updateDescription"})
	h.Do(t, capturetest.Step{Kind: capturetest.Delete, NS: big, ID: 1})
	rec.pauseAt = insertAt + 1   // a batch ends after the insert's first fragment
	rec.failAt = replaceAt + 2   // the stream fails before the replace's last fragment
	partial := map[string]bool{} // tokens of fragments before the last
	for _, i := range []int{insertAt, replaceAt, replaceAt + 1, updateAt} {
		partial[rec.events[i].Lookup("_id").Document().String()] = true
	}

	r := capture.NewChangeStreamReaderFrom(rec, capture.ChangeStreamOptions{Filter: appOnly,
		Retry: mdb.RetryPolicy{MaxElapsed: time.Minute, Initial: time.Millisecond, Max: 10 * time.Millisecond}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan migration.Event, 64)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, start, out) }()
	var got []migration.Event
	for len(got) < 5 {
		select {
		case ev := <-out:
			if partial[ev.Pos.ResumeToken.String()] {
				t.Fatalf("%s event at a fragment's resume token %s: a resume there would start inside the split event", ev.Op, ev.Pos.ResumeToken)
			}
			if ev.Op != migration.OpNoop && ev.Op != migration.OpCreate {
				got = append(got, ev)
			}
		case err := <-errc:
			t.Fatalf("reader ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("timed out; got %d events", len(got))
		}
	}
	cancel()
	wantOps := []migration.Op{migration.OpInsert, migration.OpInsert, migration.OpReplace, migration.OpUpdate, migration.OpDelete}
	for i, ev := range got {
		if ev.Op != wantOps[i] {
			t.Fatalf("event %d is %s, want %s (events %v)", i, ev.Op, wantOps[i], ops(got))
		}
	}
	wantDoc := func(ev migration.Event, d bson.D) {
		t.Helper()
		raw, _ := bson.Marshal(d)
		if !bytes.Equal(ev.FullDocument, raw) {
			t.Errorf("%s: fullDocument of %d bytes, want the %d bytes recorded", ev.Op, len(ev.FullDocument), len(raw))
		}
	}
	wantDoc(got[1], bigDoc)
	wantDoc(got[2], replaced)
	if pad, _ := got[3].Update.UpdatedFields.Lookup("pad").StringValueOK(); len(pad) != 1<<20+1 {
		t.Errorf("update: updatedFields.pad of %d bytes, want %d", len(pad), 1<<20+1)
	}
	// Each event resumes after its last fragment.
	for i, at := range map[int]int{1: insertAt + 1, 2: replaceAt + 2, 3: updateAt + 1} {
		if tok := rec.events[at].Lookup("_id").Document(); got[i].Pos.ResumeToken.String() != tok.String() {
			t.Errorf("%s resumes at %s, want its last fragment's token %s", got[i].Op, got[i].Pos.ResumeToken, tok)
		}
	}
}

func ops(evs []migration.Event) []migration.Op {
	var out []migration.Op
	for _, ev := range evs {
		out = append(out, ev.Op)
	}
	return out
}

func TestSplitsLargeEvents(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"7.0.0": true, "7.0.42": true, "8.0.4": true, "6.0.9": true, "6.0.12": true,
		"6.0.8": false, "6.0.0": false, "5.0.21": false, "6.3.1": false, "7.0.2-rc0": true, "": false} {
		if got := capture.SplitsLargeEvents(v); got != want {
			t.Errorf("SplitsLargeEvents(%q) = %v, want %v", v, got, want)
		}
	}
}
