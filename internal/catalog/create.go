package catalog

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
)

// CreateCommand builds the create command that makes c on a destination with
// the options it has on the source. Server-generated fields (clusteredIndex.v)
// are dropped; everything else is passed as listed, so a destination that
// does not support an option refuses it rather than it being dropped silently.
func CreateCommand(c Collection) (bson.D, error) {
	cmd := bson.D{{Key: "create", Value: c.NS.Coll}}
	elems, err := c.Options.Elements()
	if err != nil {
		return nil, fmt.Errorf("options of %s: %w", c.NS, err)
	}
	for _, e := range elems {
		k, v := e.Key(), e.Value()
		if k == "clusteredIndex" && v.Type == bson.TypeEmbeddedDocument {
			v = bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: strip(v.Document(), "v", "ns")}
		}
		cmd = append(cmd, bson.E{Key: k, Value: v})
	}
	return cmd, nil
}

// Create makes c (a collection, time-series collection or view) on dst. It
// is idempotent: an existing namespace is not an error. When the destination
// refuses it, Create returns the refusal with the server's reason and a nil
// error; any other error is a failure of the run.
func Create(ctx context.Context, dst *mongo.Client, c Collection) (*Refusal, error) {
	cmd, err := CreateCommand(c)
	if err != nil {
		return nil, err
	}
	err = dst.Database(c.NS.DB).RunCommand(ctx, cmd).Err()
	switch {
	case err == nil, mdb.IsNamespaceExists(err):
		return nil, nil
	case mdb.IsRefused(err):
		r := newRefusal(c.NS, string(c.Kind), "", c.Options, err)
		return &r, nil
	}
	return nil, fmt.Errorf("create %s %s on the destination: %w", c.Kind, c.NS, err)
}

// strip returns doc without the top-level keys named.
func strip(doc bson.Raw, keys ...string) bson.Raw {
	elems, err := doc.Elements()
	if err != nil {
		return doc
	}
	out := bson.D{}
	skip := func(k string) bool {
		for _, s := range keys {
			if s == k {
				return true
			}
		}
		return false
	}
	for _, e := range elems {
		if !skip(e.Key()) {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	b, err := bson.Marshal(out)
	if err != nil {
		return doc
	}
	return b
}
