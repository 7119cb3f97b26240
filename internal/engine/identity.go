package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/livemigrate/livemigrate/internal/mdb"
)

// fingerprint names a deployment independently of the connection string's
// credentials and options: "rs:<setName>/<sorted members>" for a replica
// set, "hosts:<sorted seed list>" otherwise.
func fingerprint(ctx context.Context, c *mongo.Client, uri mdb.URI) (string, error) {
	raw, err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		return "", fmt.Errorf("hello: %w", err)
	}
	if set, ok := raw.Lookup("setName").StringValueOK(); ok {
		var hosts []string
		if arr, ok := raw.Lookup("hosts").ArrayOK(); ok {
			vals, _ := arr.Values()
			for _, v := range vals {
				if h, ok := v.StringValueOK(); ok {
					hosts = append(hosts, h)
				}
			}
		}
		slices.Sort(hosts)
		return "rs:" + set + "/" + strings.Join(hosts, ","), nil
	}
	cs, err := connstring.Parse(uri.Raw())
	if err != nil {
		return "", fmt.Errorf("connection string %s: %s", uri, mdb.RedactText(err.Error()))
	}
	hosts := slices.Clone(cs.Hosts)
	slices.Sort(hosts)
	return "hosts:" + strings.Join(hosts, ","), nil
}
