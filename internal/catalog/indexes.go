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

// Index is one secondary index of a collection as listIndexes reports it,
// normalized for createIndexes.
type Index struct {
	Name string `bson:"name" json:"name"`
	// Spec is the listIndexes document without "v" and "ns", field order kept.
	Spec bson.Raw `bson:"spec" json:"spec"`
}

// Unique reports whether the index enforces uniqueness.
func (ix Index) Unique() bool {
	b, _ := ix.Spec.Lookup("unique").BooleanOK()
	return b
}

// Relaxed returns the spec to build during sync: unique indexes lose
// "unique" (and "prepareUnique"), so change application can never fail on a
// duplicate that exists only transiently; other specs are returned as is.
func (ix Index) Relaxed() bson.Raw {
	if !ix.Unique() {
		return ix.Spec
	}
	return strip(ix.Spec, "unique", "prepareUnique")
}

// Normalize strips the server-generated "v" and "ns" fields from a
// listIndexes document.
func Normalize(spec bson.Raw) bson.Raw { return strip(spec, "v", "ns") }

// ListIndexes returns the secondary indexes of ns (the _id index is made
// with the collection and is left out).
func ListIndexes(ctx context.Context, c *mongo.Client, ns migration.Namespace) ([]Index, error) {
	cur, err := c.Database(ns.DB).Collection(ns.Coll).Indexes().List(ctx)
	if err != nil {
		if mdb.IsNamespaceNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list indexes of %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	var out []Index
	for cur.Next(ctx) {
		name, _ := cur.Current.Lookup("name").StringValueOK()
		if name == "_id_" {
			continue
		}
		out = append(out, Index{Name: name, Spec: Normalize(slices.Clone(cur.Current))})
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", ns, err)
	}
	return out, nil
}

// CreateIndex builds one index on ns with spec (one createIndexes command per
// index, so a refusal names exactly one index). Building an index that
// already exists with the same spec is a no-op. A refusal is returned with a
// nil error; any other error is a failure of the run.
func CreateIndex(ctx context.Context, dst *mongo.Client, ns migration.Namespace, name string, spec bson.Raw) (*Refusal, error) {
	cmd := bson.D{{Key: "createIndexes", Value: ns.Coll}, {Key: "indexes", Value: bson.A{spec}}}
	err := dst.Database(ns.DB).RunCommand(ctx, cmd).Err()
	switch {
	case err == nil:
		return nil, nil
	case mdb.IsRefused(err):
		r := newRefusal(ns, "index", name, spec, err)
		return &r, nil
	}
	return nil, fmt.Errorf("create index %s on %s: %w", name, ns, err)
}

// RestoreUnique turns the relaxed (non-unique) index ix on ns back into the
// unique index of the source. Where the destination supports converting an
// index in place (MongoDB 6.0+: collMod prepareUnique, then unique) it does
// so; elsewhere (FerretDB has no collMod) it drops the relaxed index and
// builds the original spec. It is idempotent: an index that is already
// unique is left alone, and a crash between drop and build is repaired by
// running it again. Duplicates on the destination make it fail with the
// server's message, naming the index.
func RestoreUnique(ctx context.Context, dst *mongo.Client, ns migration.Namespace, ix Index) error {
	if !ix.Unique() {
		return nil
	}
	current, err := ListIndexes(ctx, dst, ns)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(current, func(c Index) bool { return c.Name == ix.Name })
	if i >= 0 && current[i].Unique() {
		return nil
	}
	db := dst.Database(ns.DB)
	if i >= 0 {
		err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: ns.Coll},
			{Key: "index", Value: bson.D{{Key: "name", Value: ix.Name}, {Key: "prepareUnique", Value: true}}}}).Err()
		if err == nil {
			err = db.RunCommand(ctx, bson.D{{Key: "collMod", Value: ns.Coll},
				{Key: "index", Value: bson.D{{Key: "name", Value: ix.Name}, {Key: "unique", Value: true}}}}).Err()
			if err != nil {
				return fmt.Errorf("restore unique index %s on %s (collMod unique): %w", ix.Name, ns, err)
			}
			return nil
		}
		if !mdb.IsNotImplemented(err) {
			return fmt.Errorf("restore unique index %s on %s (collMod prepareUnique): %w", ix.Name, ns, err)
		}
		if err := db.Collection(ns.Coll).Indexes().DropOne(ctx, ix.Name); err != nil && !mdb.IsIndexNotFound(err) {
			return fmt.Errorf("restore unique index %s on %s (drop relaxed index): %w", ix.Name, ns, err)
		}
	}
	err = db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: ns.Coll}, {Key: "indexes", Value: bson.A{ix.Spec}}}).Err()
	if err != nil {
		if mdb.IsDuplicateKey(err) {
			return fmt.Errorf("restore unique index %s on %s: the destination holds duplicate keys (%w); verify the source has no duplicates and re-run the commit", ix.Name, ns, err)
		}
		return fmt.Errorf("restore unique index %s on %s: %w", ix.Name, ns, err)
	}
	return nil
}
