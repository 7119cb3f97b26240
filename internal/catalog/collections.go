package catalog

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Kind is what listCollections says a namespace is.
type Kind string

// Kinds of namespaces.
const (
	KindCollection Kind = "collection"
	KindView       Kind = "view"
	KindTimeseries Kind = "timeseries"
)

// Collection is one namespace on the source with its creation options.
type Collection struct {
	NS   migration.Namespace
	Kind Kind
	// Options is the "options" document of listCollections (capped, size, max,
	// validator, collation, clusteredIndex, timeseries, viewOn, pipeline, …).
	Options bson.Raw

	// Estimates from collStats (0 when the server cannot tell).
	EstimatedDocuments int64
	EstimatedBytes     int64
}

// ViewOn returns the namespace a view reads from ("" coll for collections).
func (c Collection) ViewOn() migration.Namespace {
	if v, ok := c.Options.Lookup("viewOn").StringValueOK(); ok {
		return migration.Namespace{DB: c.NS.DB, Coll: v}
	}
	return migration.Namespace{}
}

// Capped reports whether the collection is capped.
func (c Collection) Capped() bool {
	b, _ := c.Options.Lookup("capped").BooleanOK()
	return b
}

// List returns the in-scope namespaces of the server, collections before
// views, each group sorted by name. Estimates are not filled in (Estimate).
func List(ctx context.Context, c *mongo.Client, scope *Scope) ([]Collection, error) {
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	var out []Collection
	for _, db := range dbs {
		if !scope.MatchDatabase(db) {
			continue
		}
		cur, err := c.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
		for cur.Next(ctx) {
			name, _ := cur.Current.Lookup("name").StringValueOK()
			ns := migration.Namespace{DB: db, Coll: name}
			if !scope.Match(ns) {
				continue
			}
			typ, _ := cur.Current.Lookup("type").StringValueOK()
			kind := Kind(typ)
			if kind == "" {
				kind = KindCollection
			}
			opts, _ := cur.Current.Lookup("options").DocumentOK()
			out = append(out, Collection{NS: ns, Kind: kind, Options: slices.Clone(opts)})
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
	}
	slices.SortStableFunc(out, func(a, b Collection) int {
		if (a.Kind == KindView) != (b.Kind == KindView) {
			if a.Kind == KindView {
				return 1
			}
			return -1
		}
		if a.NS.DB != b.NS.DB {
			if a.NS.DB < b.NS.DB {
				return -1
			}
			return 1
		}
		if a.NS.Coll < b.NS.Coll {
			return -1
		} else if a.NS.Coll > b.NS.Coll {
			return 1
		}
		return 0
	})
	return out, nil
}

// Estimate returns the document count and data size of ns from the
// collection's statistics. Servers that cannot tell yield zeros and no error:
// an estimate only drives progress and ordering.
//
// It reads the $collStats stage's storageStats (summed over shards), which
// both MongoDB and FerretDB take from metadata. The collStats command is the
// fallback: on FerretDB it runs SQLite's ANALYZE first — a full pass over the
// table and every index of the source, and a write — which cost 70-190 ms per
// 20-50k-document collection before the copy could start.
func Estimate(ctx context.Context, c *mongo.Client, ns migration.Namespace) (docs, bytes int64, err error) {
	cur, err := c.Database(ns.DB).Collection(ns.Coll).Aggregate(ctx, bson.A{bson.D{{Key: "$collStats", Value: bson.D{{Key: "storageStats", Value: bson.D{}}}}}})
	if err == nil {
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			st, _ := cur.Current.Lookup("storageStats").DocumentOK()
			n := mdb.Int64(st.Lookup("count"))
			docs += n
			// avgObjSize is size/count on MongoDB (uncompressed BSON). It is
			// also right on FerretDB, whose storageStats.size counts the
			// indexes too.
			bytes += n * mdb.Int64(st.Lookup("avgObjSize"))
		}
		if err = cur.Err(); err == nil {
			return docs, bytes, nil
		}
	}
	if mdb.IsNamespaceNotFound(err) {
		return 0, 0, nil
	}
	raw, err := c.Database(ns.DB).RunCommand(ctx, bson.D{{Key: "collStats", Value: ns.Coll}}).Raw()
	if err != nil {
		if mdb.IsRefused(err) || mdb.IsNamespaceNotFound(err) {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("collStats %s: %w", ns, err)
	}
	return mdb.Int64(raw.Lookup("count")), mdb.Int64(raw.Lookup("size")), nil
}

// Exists returns which of nss exist on c (collections or views).
func Exists(ctx context.Context, c *mongo.Client, nss []migration.Namespace) ([]migration.Namespace, error) {
	byDB := map[string]map[string]bool{}
	var found []migration.Namespace
	for _, ns := range nss {
		names, ok := byDB[ns.DB]
		if !ok {
			list, err := c.Database(ns.DB).ListCollectionNames(ctx, bson.D{})
			if err != nil {
				return nil, fmt.Errorf("list collections of %s on the destination: %w", ns.DB, err)
			}
			names = map[string]bool{}
			for _, n := range list {
				names[n] = true
			}
			byDB[ns.DB] = names
		}
		if names[ns.Coll] {
			found = append(found, ns)
		}
	}
	return found, nil
}

// Drop drops ns on c; a missing namespace is not an error.
func Drop(ctx context.Context, c *mongo.Client, ns migration.Namespace) error {
	err := c.Database(ns.DB).Collection(ns.Coll).Drop(ctx)
	if err != nil && !mdb.IsNamespaceNotFound(err) {
		return fmt.Errorf("drop %s on the destination: %w", ns, err)
	}
	return nil
}
