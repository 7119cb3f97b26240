package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// idLookupBench measures what re-reading k documents by _id costs on
// FerretDB as the collection grows: k equality finds (one after the other
// and 4 at a time), one $in of k, and a full scan; and what the server's
// explain says about the equality find (pushdown, index use).
func idLookupBench(args []string) error {
	fs := flag.NewFlagSet("idlookup", flag.ContinueOnError)
	sizesF := fs.String("docs", "20000,200000", "collection sizes (documents) to measure at")
	ksF := fs.String("k", "1,10,100", "numbers of documents re-read")
	backendsF := fs.String("backends", "sqlite,postgresql", "FerretDB backends")
	idsF := fs.String("ids", "objectid,int64", "_id types: objectid, int64")
	docBytes := fs.Int("doc-bytes", 500, "document filler size")
	budget := fs.Duration("budget", 20*time.Second, "time limit per equality measurement: the rest is extrapolated from the mean")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes, err := positiveList[int]("-docs", *sizesF)
	if err != nil {
		return err
	}
	ks, err := positiveList[int]("-k", *ksF)
	if err != nil {
		return err
	}
	ids := strings.Split(*idsF, ",")
	for _, id := range ids {
		if id != "objectid" && id != "int64" {
			return fmt.Errorf("-ids %q: want objectid and/or int64", *idsF)
		}
	}
	type row struct {
		Backend  string  `json:"backend"`
		IDs      string  `json:"ids"`
		Docs     int     `json:"documents"`
		K        int     `json:"k"`
		Eq       float64 `json:"equalitySequentialSeconds"`
		EqPar    float64 `json:"equality4ConcurrentSeconds"`
		EqEst    bool    `json:"equalityExtrapolated"`
		In       float64 `json:"inSeconds"`
		Scan     float64 `json:"scanSeconds"`
		ListDBs  float64 `json:"listDatabaseNamesSeconds"`
		Explain  string  `json:"explainEquality"`
		ExplainD string  `json:"explainEqualityOnCopiedCollection"`
	}
	var rows []row
	ctx := context.Background()
	for _, b := range strings.Split(*backendsF, ",") {
		srv, err := startServers(ctx, "idlookup", mongotest.Options{}, mongotest.Backend(b))
		if err != nil {
			return fmt.Errorf("backend %s: %w", b, err)
		}
		func() {
			defer srv.Close()
			for _, idType := range ids {
				coll := srv.sc.Database("bench").Collection("ids_" + idType)
				var all []any
				have := 0
				for _, n := range sizes {
					fmt.Fprintf(os.Stderr, "%s %s: filling to %d documents…\n", b, idType, n)
					for have < n {
						batch := make([]any, 0, 1000)
						for ; have < n && len(batch) < 1000; have++ {
							var id any = int64(have)
							if idType == "objectid" {
								id = bson.NewObjectID()
							}
							all = append(all, id)
							batch = append(batch, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: have}, {Key: "f", Value: strings.Repeat("x", *docBytes)}})
						}
						if _, err = coll.InsertMany(ctx, batch); err != nil {
							err = fmt.Errorf("fill: %w", err)
							return
						}
					}
					// The destination's collection as the engine makes it:
					// created empty first (createCollection), then filled.
					dcoll := srv.dc.Database("bench").Collection("ids_" + idType)
					if err = copyColl(ctx, coll, dcoll); err != nil {
						return
					}
					explain := explainEq(ctx, coll, all[0])
					explainD := explainEq(ctx, dcoll, all[0])
					t0 := time.Now()
					if _, err = drain(coll.Find(ctx, bson.D{})); err != nil {
						return
					}
					scan := time.Since(t0).Seconds()
					t0 = time.Now()
					if _, err = srv.sc.ListDatabaseNames(ctx, bson.D{}); err != nil {
						return
					}
					listDBs := time.Since(t0).Seconds()
					rng := rand.New(rand.NewPCG(1, uint64(n)))
					for _, k := range ks {
						pick := make([]any, k)
						for i := range pick {
							pick[i] = all[rng.IntN(len(all))]
						}
						r := row{Backend: b, IDs: idType, Docs: n, K: k, Scan: scan, ListDBs: listDBs, Explain: explain, ExplainD: explainD}
						if r.Eq, r.EqEst, err = eqLookups(ctx, coll, pick, 1, *budget); err != nil {
							return
						}
						if r.EqPar, _, err = eqLookups(ctx, coll, pick, 4, *budget); err != nil {
							return
						}
						t0 := time.Now()
						got, err2 := drain(coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A(pick)}}}}))
						if err = err2; err != nil {
							return
						}
						if got == 0 {
							err = fmt.Errorf("$in of %d found nothing", k)
							return
						}
						r.In = time.Since(t0).Seconds()
						rows = append(rows, r)
						fmt.Fprintf(os.Stderr, "  k=%d: eq %.3fs (4 at a time %.3fs), $in %.3fs, scan %.3fs\n", k, r.Eq, r.EqPar, r.In, r.Scan)
					}
				}
			}
		}()
		if err != nil {
			return fmt.Errorf("backend %s: %w", b, err)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\t_id\tdocuments\tk\tk equality finds s\t4 at a time s\tone $in s\tscan s\tlistDatabases s\t")
	for _, r := range rows {
		est := ""
		if r.EqEst {
			est = " (est)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.3f%s\t%.3f%s\t%.3f\t%.3f\t%.3f\t\n", r.Backend, r.IDs, r.Docs, r.K, r.Eq, est, r.EqPar, est, r.In, r.Scan, r.ListDBs)
	}
	tw.Flush()
	seen := map[string]bool{}
	for _, r := range rows {
		key := r.Backend + " " + r.IDs
		if !seen[key] {
			seen[key] = true
			fmt.Printf("explain find({_id}) %s: %s\n  on the copied (destination) collection: %s\n", key, r.Explain, r.ExplainD)
		}
	}
	return writeBenchJSON("idlookup", rows)
}

// eqLookups finds each _id with its own equality query, par at a time,
// and returns the time for all of them (extrapolated from the mean when
// budget ran out first).
func eqLookups(ctx context.Context, coll *mongo.Collection, pick []any, par int, budget time.Duration) (float64, bool, error) {
	t0 := time.Now()
	var mu sync.Mutex
	var firstErr error
	done := 0
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, id := range pick {
		if time.Since(t0) > budget {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := drain(coll.Find(ctx, bson.D{{Key: "_id", Value: id}}))
			if err == nil && n != 1 {
				err = fmt.Errorf("find _id %v: %d documents", id, n)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			done++
		}()
	}
	wg.Wait()
	took := time.Since(t0).Seconds()
	if done < len(pick) {
		return took / float64(done) * float64(len(pick)), true, firstErr
	}
	return took, false, firstErr
}

func drain(cur *mongo.Cursor, err error) (int, error) {
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

// copyColl makes dst a copy of src the way the engine's copy does: the
// collection created first, then documents inserted in batches.
func copyColl(ctx context.Context, src, dst *mongo.Collection) error {
	if err := dst.Drop(ctx); err != nil {
		return err
	}
	if err := dst.Database().CreateCollection(ctx, dst.Name()); err != nil {
		return err
	}
	cur, err := src.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	var batch []any
	for cur.Next(ctx) {
		batch = append(batch, append(bson.Raw(nil), cur.Current...))
		if len(batch) == 1000 {
			if _, err := dst.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if _, err := dst.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
			return err
		}
	}
	return cur.Err()
}

// explainEq is the server's explain of find({_id: id}), compacted.
func explainEq(ctx context.Context, coll *mongo.Collection, id any) string {
	var out bson.M
	err := coll.Database().RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: coll.Name()}, {Key: "filter", Value: bson.D{{Key: "_id", Value: id}}}}}}).Decode(&out)
	if err != nil {
		return "explain failed: " + err.Error()
	}
	var parts []string
	for _, k := range []string{"filterPushdown", "sortPushdown", "limitPushdown", "queryPlanner"} {
		if v, ok := out[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}
