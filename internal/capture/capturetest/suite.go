// Package capturetest is the conformance suite every capture.Reader passes
// (as restic's backend/test is for backends). A Harness performs steps on a
// source — a real FerretDB for the oplog reader, recorded MongoDB change
// event documents for the change-stream reader — and the suite checks that
// the reader turns them into the same normalized events.
package capturetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Kind is what a Step does on the source.
type Kind string

// Steps the suite performs.
const (
	Insert      Kind = "insert"
	Update      Kind = "update" // $set Set, $unset Unset (top-level fields)
	Replace     Kind = "replace"
	Delete      Kind = "delete"
	CreateColl  Kind = "create"
	DropColl    Kind = "drop"
	CreateIndex Kind = "createIndex"
	DropIndex   Kind = "dropIndex"
)

// Step is one change made on the source.
type Step struct {
	Kind  Kind
	NS    migration.Namespace
	ID    int32
	Doc   bson.D   // Insert, Replace: fields besides _id
	Set   bson.D   // Update
	Unset []string // Update
	Index string   // CreateIndex (key {Index: 1}, name Index+"_1"), DropIndex
}

// Harness drives one reader implementation.
type Harness interface {
	// Reader returns a new reader over the harness's source.
	Reader(t *testing.T) capture.Reader
	// Start returns the position capture starts from, before any step.
	Start(t *testing.T) migration.Position
	// Do performs s on the source.
	Do(t *testing.T, s Step)
	// Lost returns a reader and a position the source no longer holds
	// history for.
	Lost(t *testing.T) (capture.Reader, migration.Position)
}

// Run runs the whole suite; newHarness gives each subtest a fresh source.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("EventsInOrder", func(t *testing.T) { t.Parallel(); testEventsInOrder(t, newHarness(t)) })
	t.Run("Resume", func(t *testing.T) { t.Parallel(); testResume(t, newHarness(t)) })
	t.Run("HistoryLost", func(t *testing.T) { t.Parallel(); testHistoryLost(t, newHarness(t)) })
	t.Run("CancelClosesOutput", func(t *testing.T) { t.Parallel(); testCancel(t, newHarness(t)) })
}

var (
	nsA = migration.Namespace{DB: "app", Coll: "a"}
	nsB = migration.Namespace{DB: "app", Coll: "b"}
)

func dataSteps() []Step {
	return []Step{
		{Kind: Insert, NS: nsA, ID: 1, Doc: bson.D{{Key: "x", Value: "one"}, {Key: "n", Value: int32(1)}, {Key: "gone", Value: true}}},
		{Kind: Insert, NS: nsA, ID: 2, Doc: bson.D{{Key: "x", Value: "two"}}},
		{Kind: Update, NS: nsA, ID: 1, Set: bson.D{{Key: "n", Value: int32(2)}, {Key: "y", Value: "new"}}, Unset: []string{"gone"}},
		{Kind: Replace, NS: nsA, ID: 2, Doc: bson.D{{Key: "z", Value: int32(7)}}},
		{Kind: Insert, NS: nsA, ID: 3, Doc: bson.D{{Key: "x", Value: "three"}}},
		{Kind: Delete, NS: nsA, ID: 3},
	}
}

func ddlSteps() []Step {
	return []Step{
		{Kind: CreateColl, NS: nsB},
		{Kind: CreateIndex, NS: nsB, Index: "k"},
		{Kind: DropIndex, NS: nsB, Index: "k_1"},
		{Kind: DropColl, NS: nsB},
	}
}

// running is a reader running in the background.
type running struct {
	cancel context.CancelFunc
	out    chan migration.Event
	errc   chan error
}

func start(r capture.Reader, from migration.Position) *running {
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{cancel: cancel, out: make(chan migration.Event, 1024), errc: make(chan error, 1)}
	go func() { rr.errc <- r.Run(ctx, from, rr.out) }()
	return rr
}

// collect reads events from a running reader until want data/DDL events
// (noops excluded) arrived or the deadline passes.
func collect(t *testing.T, r capture.Reader, from migration.Position, want int, cancelAfter bool) ([]migration.Event, context.CancelFunc, <-chan error) {
	t.Helper()
	return collectFrom(t, start(r, from), want, cancelAfter)
}

func collectFrom(t *testing.T, rr *running, want int, cancelAfter bool) ([]migration.Event, context.CancelFunc, <-chan error) {
	t.Helper()
	return collectCounting(t, rr, want, cancelAfter, func(migration.Event) bool { return true })
}

// collectCounting is collectFrom counting only the events count accepts.
func collectCounting(t *testing.T, rr *running, want int, cancelAfter bool, count func(migration.Event) bool) ([]migration.Event, context.CancelFunc, <-chan error) {
	t.Helper()
	cancel, out, errc := rr.cancel, rr.out, rr.errc
	var got []migration.Event
	n := 0
	deadline := time.After(30 * time.Second)
	for n < want {
		select {
		case ev, ok := <-out:
			if !ok {
				t.Fatalf("reader stopped after %d of %d events: %v", len(got), want, <-errc)
			}
			if ev.Op != migration.OpNoop {
				got = append(got, ev)
				if count(ev) {
					n++
				}
			}
		case <-deadline:
			cancel()
			t.Fatalf("got %d of %d events in 30s: %v", len(got), want, summarize(got))
		}
	}
	if cancelAfter {
		cancel()
		for range out {
		}
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel = %v, want context.Canceled", err)
		}
	}
	return got, cancel, errc
}

func summarize(evs []migration.Event) []string {
	var s []string
	for _, ev := range evs {
		s = append(s, fmt.Sprintf("%s %s %s", ev.Op, ev.NS, idOf(ev)))
	}
	return s
}

func idOf(ev migration.Event) string {
	if ev.DocumentKey == nil {
		return ""
	}
	return ev.DocumentKey.Lookup("_id").String()
}

// model applies data events to documents, the way any applier must.
type model map[string]bson.D // ns/_id → fields without _id

func (m model) apply(t *testing.T, ev migration.Event) {
	t.Helper()
	key := ev.NS.String() + "/" + idOf(ev)
	switch {
	case ev.Op == migration.OpDelete:
		delete(m, key)
	case ev.FullDocument != nil:
		m[key] = fields(t, ev.FullDocument)
	case ev.Op == migration.OpUpdate && ev.Update != nil:
		doc := m[key]
		set := fields(t, ev.Update.UpdatedFields)
		for _, e := range set {
			if i := slices.IndexFunc(doc, func(f bson.E) bool { return f.Key == e.Key }); i >= 0 {
				doc[i].Value = e.Value
			} else {
				doc = append(doc, e)
			}
		}
		doc = slices.DeleteFunc(doc, func(f bson.E) bool { return slices.Contains(ev.Update.RemovedFields, f.Key) })
		m[key] = doc
	default:
		t.Fatalf("data event %s on %s carries neither a document nor an update description", ev.Op, ev.NS)
	}
}

func fields(t *testing.T, raw bson.Raw) bson.D {
	t.Helper()
	var d bson.D
	if err := bson.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	d = slices.DeleteFunc(d, func(e bson.E) bool { return e.Key == "_id" })
	sort.Slice(d, func(i, j int) bool { return d[i].Key < d[j].Key })
	return d
}

func expected(steps []Step) map[string]bson.D {
	m := map[string]bson.D{}
	for _, s := range steps {
		v, _ := bson.Marshal(bson.D{{Key: "v", Value: s.ID}})
		key := s.NS.String() + "/" + bson.Raw(v).Lookup("v").String()
		switch s.Kind {
		case Insert, Replace:
			m[key] = slices.Clone(s.Doc)
		case Update:
			doc := m[key]
			for _, e := range s.Set {
				if i := slices.IndexFunc(doc, func(f bson.E) bool { return f.Key == e.Key }); i >= 0 {
					doc[i].Value = e.Value
				} else {
					doc = append(doc, e)
				}
			}
			m[key] = slices.DeleteFunc(doc, func(f bson.E) bool { return slices.Contains(s.Unset, f.Key) })
		case Delete:
			delete(m, key)
		}
	}
	for k, d := range m {
		sort.Slice(d, func(i, j int) bool { return d[i].Key < d[j].Key })
		m[k] = d
	}
	return m
}

func normalize(t *testing.T, m model) map[string]bson.D {
	out := map[string]bson.D{}
	for k, d := range m {
		out[k] = fields(t, mustMarshal(t, d))
	}
	return out
}

func mustMarshal(t *testing.T, d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testEventsInOrder: data events arrive in order, per document, with
// positions that never go back, and replaying them yields the source's
// documents; DDL events arrive with their namespaces and index names.
func testEventsInOrder(t *testing.T, h Harness) {
	from := h.Start(t)
	steps := append(dataSteps(), ddlSteps()...)
	rr := start(h.Reader(t), from)
	for _, s := range steps {
		h.Do(t, s)
	}
	// +1: the first insert creates app.a implicitly, and readers report it.
	got, cancel, _ := collectFrom(t, rr, len(steps)+1, false)
	defer cancel()

	m := model{}
	var ddl []string
	for i, ev := range got {
		if i > 0 && ev.Pos.Before(got[i-1].Pos) {
			t.Errorf("event %d (%s %s) at %v is before event %d at %v", i, ev.Op, ev.NS, ev.Pos.TS, i-1, got[i-1].Pos.TS)
		}
		if ev.Wall.IsZero() {
			t.Errorf("event %d (%s) has no wall time", i, ev.Op)
		}
		if ev.Op.IsDDL() {
			d := string(ev.Op) + " " + ev.NS.String()
			for _, ix := range ev.Indexes {
				d += " +" + ix.Lookup("name").StringValue()
			}
			for _, n := range ev.IndexNames {
				d += " -" + n
			}
			ddl = append(ddl, d)
			continue
		}
		if ev.DocumentKey == nil {
			t.Fatalf("data event %d (%s) without document key", i, ev.Op)
		}
		m.apply(t, ev)
	}
	if diff := cmp.Diff(expected(steps), normalize(t, m)); diff != "" {
		t.Errorf("documents after replaying the events (-source +replayed):\n%s", diff)
	}
	wantDDL := []string{"create app.a", "create app.b", "createIndexes app.b +k_1", "dropIndexes app.b -k_1", "drop app.b"}
	if diff := cmp.Diff(wantDDL, ddl); diff != "" {
		t.Errorf("DDL events (-want +got):\n%s", diff)
	}
	latest, err := h.Reader(t).Latest(context.Background())
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	if last := got[len(got)-1].Pos; latest.Before(last) {
		t.Errorf("Latest = %v, before the last event's position %v", latest.TS, last.TS)
	}
}

// testResume: a reader started at an event's position sends what follows
// it (and perhaps that event again), never anything older — except within
// the window a reader declares it replays (ResumeReplay).
func testResume(t *testing.T, h Harness) {
	from := h.Start(t)
	steps := dataSteps()
	for _, s := range steps {
		h.Do(t, s)
	}
	first, _, _ := collect(t, h.Reader(t), from, 4, true)
	first = slices.DeleteFunc(first, func(ev migration.Event) bool { return ev.Op.IsDDL() })
	if len(first) < 3 {
		t.Fatalf("first run: %v, want at least 3 data events", summarize(first))
	}
	resumeAt := first[2].Pos
	// Events at exactly the resume position may come again (at least once).
	lowest := resumeAt
	r := h.Reader(t)
	if rr, ok := r.(interface{ ResumeReplay() time.Duration }); ok {
		back := uint32((rr.ResumeReplay() + time.Second - 1) / time.Second)
		lowest = migration.Position{TS: bson.Timestamp{T: resumeAt.TS.T - min(back, resumeAt.TS.T)}}
	}
	rest, cancel, _ := collectCounting(t, start(r, resumeAt), len(steps)-3, false,
		func(ev migration.Event) bool { return resumeAt.Before(ev.Pos) })
	defer cancel()
	for _, ev := range rest {
		if ev.Pos.Before(lowest) {
			t.Errorf("resumed reader sent %s %s at %v, before the resume position %v less its replay window", ev.Op, ev.NS, ev.Pos.TS, resumeAt.TS)
		}
	}
	m := model{}
	for _, ev := range append(first, rest...) {
		if ev.Op.IsDDL() {
			continue
		}
		m.apply(t, ev)
	}
	if diff := cmp.Diff(expected(steps), normalize(t, m)); diff != "" {
		t.Errorf("documents after first run + resumed run (-source +replayed):\n%s", diff)
	}
}

// testHistoryLost: resuming from a position the source no longer holds
// fails with ErrHistoryLost, and the message says what to do.
func testHistoryLost(t *testing.T, h Harness) {
	r, pos := h.Lost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan migration.Event, 64)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, pos, out) }()
	for range out {
	}
	err := <-errc
	if !errors.Is(err, capture.ErrHistoryLost) {
		t.Fatalf("Run from a lost position = %v, want ErrHistoryLost", err)
	}
	var hl *capture.HistoryLostError
	if !errors.As(err, &hl) || hl.From.TS != pos.TS {
		t.Errorf("error %v does not carry the resume position %v", err, pos.TS)
	}
}

// testCancel: Run returns context.Canceled and closes its output.
func testCancel(t *testing.T, h Harness) {
	from := h.Start(t)
	rr := start(h.Reader(t), from)
	h.Do(t, dataSteps()[0])
	collectFrom(t, rr, 1, true)
}
