package verify

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// collInfo is what verify needs of one listCollections entry.
type collInfo struct {
	Type    string // "collection", "view", "timeseries"
	Options bson.Raw
}

// listNamespaces returns the in-scope namespaces of one side, with the
// same scope rules as the engine (internal/catalog).
func listNamespaces(ctx context.Context, c *mongo.Client, scope *catalog.Scope) (map[migration.Namespace]collInfo, error) {
	colls, err := catalog.List(ctx, c, scope)
	if err != nil {
		return nil, err
	}
	out := make(map[migration.Namespace]collInfo, len(colls))
	for _, cl := range colls {
		out[cl.NS] = collInfo{Type: string(cl.Kind), Options: cl.Options}
	}
	return out, nil
}
