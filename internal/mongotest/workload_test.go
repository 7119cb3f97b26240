package mongotest

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestWorkloadRecordsWhatItDid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := StartSource(t)
	c := Client(t, src)
	w := StartWorkload(ctx, c, WorkloadOptions{Namespaces: []string{"app.a", "app.b"}, Writers: 3, Rate: 300, Seed: 7})
	time.Sleep(2 * time.Second)
	records, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[OpKind]int{}
	alive := map[string]map[int64]bool{}
	for _, r := range records {
		kinds[r.Op]++
		if alive[r.NS] == nil {
			alive[r.NS] = map[int64]bool{}
		}
		switch r.Op {
		case OpInsert:
			alive[r.NS][r.ID] = true
		case OpDelete:
			delete(alive[r.NS], r.ID)
		}
	}
	for _, k := range []OpKind{OpInsert, OpUpdate, OpReplace, OpDelete} {
		if kinds[k] == 0 {
			t.Errorf("no %s in %d writes: %v", k, len(records), kinds)
		}
	}
	for ns, ids := range alive {
		db, coll, _ := strings.Cut(ns, ".")
		n, err := c.Database(db).Collection(coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if int(n) != len(ids) {
			t.Errorf("%s holds %d documents, the workload's record says %d", ns, n, len(ids))
		}
	}
	oplog, err := c.Database("local").Collection("oplog.rs").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if int(oplog) < len(records) {
		t.Errorf("oplog has %d entries for %d acknowledged writes", oplog, len(records))
	}
}
