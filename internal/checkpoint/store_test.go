package checkpoint

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dst := mongotest.Client(t, mongotest.StartDestination(t))
	s := Open(dst, "__meta", slog.New(slog.NewTextHandler(io.Discard, nil)))
	id := Identity{Source: "rs:rs0/a:1", Destination: "hosts:b:2", Filters: "include= exclude="}

	if _, found, err := s.Load(ctx); err != nil || found {
		t.Fatalf("load on an empty destination: found=%v err=%v", found, err)
	}
	run, resumed, err := s.Begin(ctx, id)
	if err != nil || resumed || run.HasStartPoint() {
		t.Fatalf("begin: %+v resumed=%v err=%v", run, resumed, err)
	}
	pos := migration.Position{TS: bson.Timestamp{T: 100, I: 3}}
	if err := s.SetStartPoint(ctx, pos, "oplog"); err != nil {
		t.Fatal(err)
	}
	run, resumed, err = s.Begin(ctx, id)
	if err != nil || !resumed || run.StartPoint.TS != pos.TS || run.StartMethod != "oplog" {
		t.Fatalf("resume: %+v resumed=%v err=%v", run, resumed, err)
	}
	other := id
	other.Source = "rs:rs0/c:3"
	_, _, err = s.Begin(ctx, other)
	var me *MismatchError
	if !errors.Is(err, ErrRunMismatch) || !errors.As(err, &me) || me.Stored != id {
		t.Fatalf("begin with another source: %v", err)
	}

	ns := migration.Namespace{DB: "d", Coll: "c"}
	c := Collection{NS: ns, State: migration.CopyDone, EstimatedDocuments: 10, CopiedDocuments: 9, CopiedBytes: 900}
	if err := s.SetCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got[ns], cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".UpdatedAt" }, cmp.Ignore())); diff != "" {
		t.Errorf("stored collection (-want +got):\n%s", diff)
	}

	spec, _ := bson.Marshal(bson.D{{Key: "key", Value: bson.D{{Key: "e", Value: 1}}}, {Key: "name", Value: "e_1"}, {Key: "unique", Value: true}})
	r := RelaxedIndex{NS: ns, Name: "e_1", Spec: spec}
	if err := s.AddRelaxed(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRestored(ctx, r); err != nil {
		t.Fatal(err)
	}
	list, err := s.Relaxed(ctx)
	if err != nil || len(list) != 1 || !list[0].Restored || string(list[0].Spec) != string(spec) {
		t.Fatalf("relaxed indexes: %+v %v", list, err)
	}

	type applyState struct {
		Pos     migration.Position `bson:"pos"`
		Applied int64              `bson:"applied"`
	}
	var st applyState
	if found, err := s.LoadState(ctx, "apply", &st); err != nil || found {
		t.Fatalf("load missing state: found=%v err=%v", found, err)
	}
	want := applyState{Pos: pos, Applied: 42}
	if err := s.SaveState(ctx, "apply", want); err != nil {
		t.Fatal(err)
	}
	want.Applied = 43
	if err := s.SaveState(ctx, "apply", want); err != nil {
		t.Fatal(err)
	}
	if found, err := s.LoadState(ctx, "apply", &st); err != nil || !found || !cmp.Equal(st, want) {
		t.Fatalf("load state: %+v found=%v err=%v", st, found, err)
	}
}
