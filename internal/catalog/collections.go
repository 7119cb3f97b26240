package catalog

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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
// When the include filters name every database exactly it lists only their
// collections: listDatabases is not free everywhere (FerretDB computes
// every database's size for it, even with nameOnly, by walking every page
// of the data), and a database that does not exist has no collections.
func List(ctx context.Context, c *mongo.Client, scope *Scope) ([]Collection, error) {
	dbs, exact := scope.ExactDatabases()
	if !exact {
		var err error
		if dbs, err = c.ListDatabaseNames(ctx, bson.D{}); err != nil {
			return nil, fmt.Errorf("list databases: %w", err)
		}
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

// EstimateSample is how many documents Estimate reads to measure the mean
// document size.
const EstimateSample = 100

// Estimate returns the document count of ns and its size in BSON bytes —
// what a copy reads and writes. Servers that cannot tell yield zeros and no
// error: an estimate only drives progress and ordering.
//
// The count is the $collStats stage's storageStats count (summed over
// shards), which both MongoDB and FerretDB take from metadata; the
// collStats command is the fallback (on FerretDB it runs SQLite's ANALYZE
// first — a full pass over the table and every index, and a write). The
// size is count × the mean BSON size of the first EstimateSample documents
// in natural order (SampleOf), not the server's size figures: FerretDB's
// avgObjSize and size are storage sizes, 3.4× the BSON of 1.2 KB documents
// with two indexes. Where no document can be read the server's avgObjSize
// stands in.
func Estimate(ctx context.Context, c *mongo.Client, ns migration.Namespace) (docs, bytes int64, err error) {
	docs, bytes, _, err = EstimateWithSample(ctx, c, ns)
	return docs, bytes, err
}

// EstimateWithSample is Estimate with the sample it measured.
func EstimateWithSample(ctx context.Context, c *mongo.Client, ns migration.Namespace) (docs, bytes int64, s Sample, err error) {
	docs, bytes, err = Count(ctx, c, ns)
	if err != nil || docs == 0 {
		return docs, bytes, s, err
	}
	if s, err = SampleOf(ctx, c, ns); err != nil {
		return 0, 0, s, err
	}
	return docs, s.EstimateBytes(docs, bytes), s, nil
}

// Count is the document count of ns and the server's size figure for it,
// as Estimate reads them (zeros when the server cannot tell).
func Count(ctx context.Context, c *mongo.Client, ns migration.Namespace) (docs, serverBytes int64, err error) {
	return collStats(ctx, c, ns)
}

// Sample is what a read of the first documents of a namespace found.
type Sample struct {
	Documents, Bytes, Largest int64
}

// EstimateBytes is docs documents at the sample's mean size; serverBytes
// (the server's figure) when the sample is empty.
func (s Sample) EstimateBytes(docs, serverBytes int64) int64 {
	if s.Documents > 0 {
		return docs * (s.Bytes / s.Documents)
	}
	return serverBytes
}

// SampleOf reads the first EstimateSample documents of ns in natural order
// (a find with a limit, which FerretDB pushes down; it has no $sample).
func SampleOf(ctx context.Context, c *mongo.Client, ns migration.Namespace) (Sample, error) {
	var s Sample
	cur, err := c.Database(ns.DB).Collection(ns.Coll).Find(ctx, bson.D{},
		options.Find().SetLimit(EstimateSample).SetBatchSize(EstimateSample))
	if err != nil {
		if mdb.IsNamespaceNotFound(err) {
			return s, nil
		}
		return s, fmt.Errorf("sample %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		n := int64(len(cur.Current))
		s.Documents++
		s.Bytes += n
		s.Largest = max(s.Largest, n)
	}
	if err := cur.Err(); err != nil {
		return Sample{}, fmt.Errorf("sample %s: %w", ns, err)
	}
	return s, nil
}

// collStats is the document count and size the server reports for ns.
func collStats(ctx context.Context, c *mongo.Client, ns migration.Namespace) (docs, bytes int64, err error) {
	cur, err := c.Database(ns.DB).Collection(ns.Coll).Aggregate(ctx, bson.A{bson.D{{Key: "$collStats", Value: bson.D{{Key: "storageStats", Value: bson.D{}}}}}})
	if err == nil {
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			st, _ := cur.Current.Lookup("storageStats").DocumentOK()
			n := mdb.Int64(st.Lookup("count"))
			docs += n
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
