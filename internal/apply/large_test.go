package apply_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/apply"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestUpdatesOfLargeDocuments: update descriptions (change-stream shape,
// no image) on destination documents of 2 MiB, one of them growing to
// 16 MiB − 1 KiB, are applied in both modes: the $in lookup of their base
// documents reads them in replies sized by bytes, and every document ends
// as the source would have it. (FerretDB writes documents this large at a
// few MB/s, so the test keeps to two.)
func TestUpdatesOfLargeDocuments(t *testing.T) {
	t.Parallel()
	for _, mode := range []apply.Mode{apply.ModeInIDs, apply.ModeBulk} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := mongotest.Client(t, mongotest.StartDestination(t))
			coll := c.Database(ns.DB).Collection(ns.Coll)
			const base = 2 << 20
			grown := strings.Repeat("g", mdb.MaxBSONSize-base-1024)
			want := map[int32][32]byte{}
			var evs []migration.Event
			for i := int32(1); i <= 2; i++ {
				pad := strings.Repeat(string(rune('a'+i)), base)
				if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: pad}}); err != nil {
					t.Fatal(err)
				}
				set := bson.D{{Key: "n", Value: i}}
				final := bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: pad}, {Key: "n", Value: i}}
				if i == 2 {
					set = append(set, bson.E{Key: "grow", Value: grown})
					final = append(final, bson.E{Key: "grow", Value: grown})
				}
				evs = append(evs, migration.Event{Op: migration.OpUpdate, NS: ns, Pos: pos(uint32(i)), DocumentKey: key(t, i),
					Update: &migration.UpdateDescription{UpdatedFields: raw(t, set)}})
				want[i] = sha256.Sum256(raw(t, final))
			}
			began := time.Now()
			p := apply.New(c, apply.Options{Mode: mode, TickEvery: 5 * time.Millisecond}, nil)
			run(t, p, evs)
			t.Logf("applied in %s", time.Since(began).Round(time.Millisecond))
			cur, err := mdb.Find(ctx, coll, bson.D{}, mdb.NewBatchSizer(mdb.SizerOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			defer cur.Close(ctx)
			got := map[int32][32]byte{}
			for cur.Next(ctx) {
				got[cur.Current().Lookup("_id").Int32()] = sha256.Sum256(cur.Current())
			}
			if err := cur.Err(); err != nil {
				t.Fatal(err)
			}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("document %d differs from the source's state after its update", id)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d documents on the destination, want %d", len(got), len(want))
			}
		})
	}
}
