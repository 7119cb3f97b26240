package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// demoCollection is one collection of the demo's sample dataset.
type demoCollection struct {
	db, coll string
	share    int // parts of the total documents
	indexes  []mongo.IndexModel
	doc      func(rng *rand.Rand, i int) bson.D
	fixed    int // a fixed number of documents instead of a share
}

// demoWorkloadNamespaces get the live write workload (no unique indexes:
// the workload's documents do not carry the unique fields).
// They are small, as an application's hot collections often are: on
// FerretDB every update and delete by _id scans its collection.
var demoWorkloadNamespaces = []string{"shop.carts", "crm.activities", "analytics.sessions"}

func demoDataset() []demoCollection {
	idx := func(unique bool, keys ...string) mongo.IndexModel {
		k := bson.D{}
		for _, f := range keys {
			k = append(k, bson.E{Key: f, Value: 1})
		}
		m := mongo.IndexModel{Keys: k}
		if unique {
			m.Options = options.Index().SetUnique(true)
		}
		return m
	}
	statuses := []string{"new", "paid", "shipped", "delivered", "returned"}
	small := func(db, coll string) demoCollection {
		return demoCollection{db: db, coll: coll, fixed: 200, doc: func(rng *rand.Rand, i int) bson.D {
			return bson.D{{Key: "_id", Value: int64(i)}, {Key: "state", Value: statuses[rng.IntN(len(statuses))]}}
		}}
	}
	return []demoCollection{
		small("shop", "carts"), small("crm", "activities"), small("analytics", "sessions"),
		{"shop", "orders", 4, []mongo.IndexModel{idx(false, "customerId"), idx(false, "status", "placedAt")}, func(rng *rand.Rand, i int) bson.D {
			return bson.D{{Key: "_id", Value: int64(i)}, {Key: "customerId", Value: int64(rng.IntN(20_000))},
				{Key: "status", Value: statuses[rng.IntN(len(statuses))]}, {Key: "total", Value: float64(rng.IntN(100_000)) / 100},
				{Key: "placedAt", Value: time.Unix(1_700_000_000+int64(i)*37, 0).UTC()},
				{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%05d", rng.IntN(5000))}, {Key: "qty", Value: int32(1 + rng.IntN(4))}}}}}
		}, 0},
		{"shop", "customers", 2, []mongo.IndexModel{idx(true, "email"), idx(false, "country")}, func(rng *rand.Rand, i int) bson.D {
			return bson.D{{Key: "_id", Value: int64(i)}, {Key: "email", Value: fmt.Sprintf("customer%d@example.com", i)},
				{Key: "name", Value: fmt.Sprintf("Customer %d", i)}, {Key: "country", Value: []string{"DE", "FR", "US", "JP", "BR"}[rng.IntN(5)]},
				{Key: "vip", Value: rng.IntN(10) == 0}}
		}, 0},
		{"shop", "products", 1, []mongo.IndexModel{idx(true, "sku")}, func(rng *rand.Rand, i int) bson.D {
			return bson.D{{Key: "_id", Value: int64(i)}, {Key: "sku", Value: fmt.Sprintf("SKU-%07d", i)},
				{Key: "price", Value: float64(rng.IntN(50_000)) / 100}, {Key: "tags", Value: bson.A{"demo", statuses[rng.IntN(3)]}}}
		}, 0},
		{"crm", "leads", 2, []mongo.IndexModel{idx(false, "company", "score")}, func(rng *rand.Rand, i int) bson.D {
			return bson.D{{Key: "_id", Value: int64(i)}, {Key: "company", Value: fmt.Sprintf("Company %d", rng.IntN(3000))},
				{Key: "score", Value: int32(rng.IntN(100))}, {Key: "notes", Value: "met at the demo booth"}}
		}, 0},
		{"crm", "accounts", 1, []mongo.IndexModel{idx(true, "accountNo")}, func(rng *rand.Rand, i int) bson.D {
			return bson.D{{Key: "_id", Value: int64(i)}, {Key: "accountNo", Value: fmt.Sprintf("ACC-%08d", i)},
				{Key: "balance", Value: int64(rng.IntN(1_000_000))}, {Key: "address", Value: bson.D{{Key: "city", Value: "Springfield"}, {Key: "zip", Value: fmt.Sprintf("%05d", rng.IntN(99999))}}}}
		}, 0},
		{"analytics", "events", 4, []mongo.IndexModel{idx(false, "type", "at")}, func(rng *rand.Rand, i int) bson.D {
			return bson.D{{Key: "_id", Value: int64(i)}, {Key: "type", Value: []string{"view", "click", "cart", "buy"}[rng.IntN(4)]},
				{Key: "at", Value: time.Unix(1_700_000_000+int64(i), 0).UTC()}, {Key: "session", Value: fmt.Sprintf("%x", rng.Uint64())}}
		}, 0},
	}
}

// loadDemoData writes about total documents into the demo collections in
// parallel unordered batches, then builds the indexes.
func loadDemoData(ctx context.Context, c *mongo.Client, total int) (int, error) {
	set := demoDataset()
	shares := 0
	for _, dc := range set {
		shares += dc.share
		total -= dc.fixed
	}
	const batch = 1000
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	written := 0
	for ci, dc := range set {
		n := max(total*dc.share/shares, 1)
		if dc.fixed > 0 {
			n = dc.fixed
		}
		written += n
		coll := c.Database(dc.db).Collection(dc.coll)
		for start := 0; start < n; start += batch {
			end := min(start+batch, n)
			g.Go(func() error {
				rng := rand.New(rand.NewPCG(uint64(ci), uint64(start)))
				docs := make([]any, 0, end-start)
				for i := start; i < end; i++ {
					docs = append(docs, dc.doc(rng, i+1))
				}
				if _, err := coll.InsertMany(gctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
					return fmt.Errorf("load %s.%s: %w", dc.db, dc.coll, err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	for _, dc := range set {
		if len(dc.indexes) == 0 {
			continue
		}
		if _, err := c.Database(dc.db).Collection(dc.coll).Indexes().CreateMany(ctx, dc.indexes); err != nil {
			return 0, fmt.Errorf("create indexes on %s.%s: %w", dc.db, dc.coll, err)
		}
	}
	return written, nil
}
