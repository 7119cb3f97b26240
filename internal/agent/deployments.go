package agent

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mdb"
)

// deployments probes every configured source. A source that cannot be
// reached is still reported (by name, without details) so that a validation
// can say why.
func (a *Agent) deployments(ctx context.Context) []api.Deployment {
	out := make([]api.Deployment, 0, len(a.opts.Sources))
	for _, s := range a.opts.Sources {
		d := api.Deployment{Name: s.Name, TLSEnabled: tlsEnabled(s.URI)}
		uri, err := s.connectionFor(api.MigrationSource{ManagedAuthentication: true})
		if err == nil {
			d, err = describe(ctx, s.Name, uri)
		}
		if err != nil {
			a.logger.Warn("source not reachable with the configured credentials", "source", s.Name, "err", err)
			d = api.Deployment{Name: s.Name, TLSEnabled: tlsEnabled(s.URI), Unreachable: mdb.RedactText(err.Error())}
		}
		out = append(out, d)
	}
	return out
}

// describe connects to a source and reads what the control plane shows.
func describe(ctx context.Context, name string, uri mdb.URI) (api.Deployment, error) {
	d := api.Deployment{Name: name, TLSEnabled: tlsEnabled(uri)}
	c, err := mdb.Connect(ctx, "source "+name, uri, mdb.ConnectOptions{Timeout: 5 * time.Second})
	if err != nil {
		return d, err
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	si, err := mdb.Probe(ctx, c)
	if err != nil {
		return d, err
	}
	d.MongoDBVersion, d.FeatureCompatibilityVersion = si.VersionString, si.FCV
	d.Sharded, d.ShardsSize = si.Topology == mdb.Sharded, si.Shards
	d.OplogSizeMB = si.Oplog.MaxBytes >> 20
	d.DBSizeBytes = dataSize(ctx, c) // 0 when the server cannot tell
	return d, nil
}

// dataSize is the sum of dbStats dataSize over the user databases (not
// admin, local or config): what is migrated, and the "data" figure the
// database-statistics validation check reports, so both pages agree.
func dataSize(ctx context.Context, c *mongo.Client) int64 {
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return 0
	}
	var n int64
	for _, db := range dbs {
		if db == "admin" || db == "local" || db == "config" {
			continue
		}
		st, err := runCommand(ctx, c, db, bson.D{{Key: "dbStats", Value: 1}})
		if err != nil {
			return 0
		}
		n += mdb.Int64(st.Lookup("dataSize"))
	}
	return n
}

func (a *Agent) reportDeployments(ctx context.Context) {
	ds := a.deployments(ctx)
	if err := a.client().ReportDeployments(ctx, ds); err != nil && ctx.Err() == nil {
		a.logger.Warn("report deployments failed", "err", err)
		return
	}
	a.logger.Debug("deployments reported", "count", len(ds))
}
