package apply

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

func mustRaw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestApplyUpdate(t *testing.T) {
	t.Parallel()
	doc := mustRaw(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: bson.D{{Key: "b", Value: int32(1)}, {Key: "c", Value: int32(2)}}},
		{Key: "arr", Value: bson.A{"x", "y", "z"}}, {Key: "gone", Value: true}})
	u := &migration.UpdateDescription{
		UpdatedFields:   mustRaw(t, bson.D{{Key: "a.b", Value: int32(9)}, {Key: "arr.1", Value: "Y"}, {Key: "new.deep", Value: "n"}}),
		RemovedFields:   []string{"gone", "a.c"},
		TruncatedArrays: []migration.TruncatedArray{{Field: "arr", NewSize: 2}},
	}
	got, err := applyUpdate(doc, u)
	if err != nil {
		t.Fatal(err)
	}
	want := mustRaw(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: bson.D{{Key: "b", Value: int32(9)}}},
		{Key: "arr", Value: bson.A{"x", "Y"}}, {Key: "new", Value: bson.D{{Key: "deep", Value: "n"}}}})
	if got.String() != want.String() {
		t.Fatalf("applyUpdate =\n %s\nwant\n %s", got, want)
	}
	// A path through a scalar cannot be applied: the caller reads the source.
	_, err = applyUpdate(doc, &migration.UpdateDescription{UpdatedFields: mustRaw(t, bson.D{{Key: "gone.x", Value: 1}})})
	if !errors.Is(err, errUnsafe) {
		t.Fatalf("update through a scalar: err = %v, want errUnsafe", err)
	}
	_, err = applyUpdate(doc, &migration.UpdateDescription{UpdatedFields: mustRaw(t, bson.D{{Key: "arr.7", Value: 1}})})
	if !errors.Is(err, errUnsafe) {
		t.Fatalf("update past an array's end: err = %v, want errUnsafe", err)
	}
}
