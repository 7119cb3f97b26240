package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// oplogReadsBench measures what each way of reading FerretDB's oplog costs
// as the oplog grows: which reads cost in proportion to the entries they
// return and which scan the whole capped collection.
func oplogReadsBench(args []string) error {
	fs := flag.NewFlagSet("oplogreads", flag.ExitOnError)
	sizes := fs.String("sizes", "3000,30000", "oplog sizes (entries) to measure at")
	docBytes := fs.Int("doc-bytes", 1000, "mean document size")
	reps := fs.Int("reps", 3, "repetitions per read (the median is reported)")
	backend := fs.String("backend", "sqlite", "FerretDB backend: sqlite or postgresql")
	only := fs.String("only", "", "measure only the reads whose description contains this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ns, err := positiveList[int]("-sizes", *sizes)
	if err != nil {
		return err
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "livemigrate-bench-oplogreads-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := mongotest.Start(ctx, mongotest.Options{Dir: dir, ReplSet: "rs0", Oplog: 10 * ns[len(ns)-1],
		Backend: mongotest.Backend(*backend)})
	if err != nil {
		return err
	}
	defer srv.Close()
	c, err := srv.Connect(ctx)
	if err != nil {
		return err
	}
	defer c.Disconnect(ctx)
	oplog := c.Database("local").Collection("oplog.rs")
	coll := c.Database("bench").Collection("docs")

	type row struct {
		Read    string             `json:"read"`
		Returns string             `json:"returns"`
		Seconds map[string]float64 `json:"seconds"` // by oplog size
	}
	reads := []struct {
		name, returns string
		run           func(ctx context.Context) (int, error)
	}{
		{"find({ts:{$gte: newest−2s}}) (the poll)", "new entries", func(ctx context.Context) (int, error) {
			newest, err := newestTS(ctx, oplog)
			if err != nil {
				return 0, err
			}
			return count(oplog.Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: bson.Timestamp{T: newest.T - 2}}}}}))
		}},
		{"find({}).sort({$natural:-1}).limit(1)", "newest entry", func(ctx context.Context) (int, error) {
			return count(oplog.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "$natural", Value: -1}}).SetLimit(1)))
		}},
		{"aggregate([{$sort:{$natural:-1}},{$limit:1}])", "newest entry", func(ctx context.Context) (int, error) {
			return count(oplog.Aggregate(ctx, mongo.Pipeline{{{Key: "$sort", Value: bson.D{{Key: "$natural", Value: -1}}}}, {{Key: "$limit", Value: 1}}}))
		}},
		{"find({}).limit(100)", "oldest 100", func(ctx context.Context) (int, error) {
			return count(oplog.Find(ctx, bson.D{}, options.Find().SetLimit(100)))
		}},
		{"find({}).skip(n−100)", "newest 100", func(ctx context.Context) (int, error) {
			n, err := oplog.EstimatedDocumentCount(ctx)
			if err != nil {
				return 0, err
			}
			return count(oplog.Find(ctx, bson.D{}, options.Find().SetSkip(max(0, n-100))))
		}},
		{"find({_id: <ObjectId>})", "one entry", func(ctx context.Context) (int, error) {
			raw, err := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSkip(0)).Raw()
			if err != nil {
				return 0, err
			}
			t0 := time.Now()
			n, err := count(oplog.Find(ctx, bson.D{{Key: "_id", Value: raw.Lookup("_id")}}))
			probeTook = time.Since(t0)
			return n, err
		}},
		{"tailable getMore, nothing new", "0 entries", func(ctx context.Context) (int, error) {
			// FerretDB closes a tailable cursor whose first batch is not
			// full, so the batches are smaller than the oplog.
			cur, err := oplog.Find(ctx, bson.D{}, options.Find().SetCursorType(options.Tailable).SetBatchSize(500))
			if err != nil {
				return 0, err
			}
			defer cur.Close(ctx)
			n := 0
			for cur.TryNext(ctx) {
				n++
			}
			if err := cur.Err(); err != nil || cur.ID() == 0 {
				return n, fmt.Errorf("tailable cursor ended after %d entries: %v", n, err)
			}
			t0 := time.Now()
			cur.TryNext(ctx) // a getMore on an exhausted tailable cursor
			probeTook = time.Since(t0)
			return n, cur.Err()
		}},
		{"estimatedDocumentCount", "count", func(ctx context.Context) (int, error) {
			n, err := oplog.EstimatedDocumentCount(ctx)
			return int(n), err
		}},
	}
	if *only != "" {
		kept := reads[:0]
		for _, r := range reads {
			if strings.Contains(r.name, *only) {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			return fmt.Errorf("-only %q: no read matches", *only)
		}
		reads = kept
	}
	rows := make([]row, len(reads))
	for i, r := range reads {
		rows[i] = row{Read: r.name, Returns: r.returns, Seconds: map[string]float64{}}
	}
	have := 0
	for _, n := range ns {
		for have < n {
			batch := make([]any, 0, 1000)
			for ; have < n && len(batch) < 1000; have++ {
				batch = append(batch, bson.D{{Key: "_id", Value: have}, {Key: "pad", Value: strings.Repeat("x", *docBytes)}})
			}
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				return fmt.Errorf("fill the oplog: %w", err)
			}
		}
		for i, r := range reads {
			var took []float64
			for range *reps {
				probeTook = 0
				t0 := time.Now()
				if _, err := r.run(ctx); err != nil {
					return fmt.Errorf("%s at %d entries: %w", r.name, n, err)
				}
				d := time.Since(t0)
				if probeTook > 0 {
					d = probeTook
				}
				took = append(took, d.Seconds())
			}
			rows[i].Seconds[strconv.Itoa(n)] = median(took)
		}
	}
	fmt.Printf("FerretDB %s (%s), ~%d-byte entries: seconds per read (median of %d)\n\n", mongotest.FerretDBVersion, *backend, *docBytes, *reps)
	fmt.Printf("| read | returns |")
	for _, n := range ns {
		fmt.Printf(" %d entries |", n)
	}
	fmt.Printf("\n|---|---|%s\n", strings.Repeat("---|", len(ns)))
	for _, r := range rows {
		fmt.Printf("| `%s` | %s |", r.Read, r.Returns)
		for _, n := range ns {
			fmt.Printf(" %.4f |", r.Seconds[strconv.Itoa(n)])
		}
		fmt.Println()
	}
	return writeBenchJSON("oplogreads", map[string]any{"backend": *backend, "doc_bytes": *docBytes, "sizes": ns, "reads": rows})
}

// probeTook, when set by a read, is the part of it that is measured.
var probeTook time.Duration

func count(cur *mongo.Cursor, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	defer cur.Close(context.Background())
	n := 0
	for cur.Next(context.Background()) {
		n++
	}
	return n, cur.Err()
}

func newestTS(ctx context.Context, oplog *mongo.Collection) (bson.Timestamp, error) {
	raw, err := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if err != nil {
		return bson.Timestamp{}, err
	}
	t, i := raw.Lookup("ts").Timestamp()
	return bson.Timestamp{T: t, I: i}, nil
}
