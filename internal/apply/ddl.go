package apply

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// applyDDL applies a catalog change. Every branch is idempotent: a replay
// finds the change already made and succeeds.
func (p *Pool) applyDDL(ctx context.Context, ev migration.Event) error {
	db := p.dst.Database(ev.NS.DB)
	what := fmt.Sprintf("apply %s on %s", ev.Op, ev.NS)
	p.logger.Info("catalog change", "op", string(ev.Op), "ns", ev.NS.String())
	switch ev.Op {
	case migration.OpCreate:
		return p.retry(ctx, what, func(ctx context.Context) error {
			cmd := bson.D{{Key: "create", Value: ev.NS.Coll}}
			for _, k := range []string{"capped", "size", "max"} {
				if v, err := ev.Options.LookupErr(k); err == nil {
					cmd = append(cmd, bson.E{Key: k, Value: v})
				}
			}
			err := db.RunCommand(ctx, cmd).Err()
			if mdb.IsNamespaceExists(err) {
				return nil
			}
			return err
		})
	case migration.OpDrop:
		return p.retry(ctx, what, func(ctx context.Context) error { return db.Collection(ev.NS.Coll).Drop(ctx) })
	case migration.OpDropDatabase:
		return p.retry(ctx, what, func(ctx context.Context) error { return db.Drop(ctx) })
	case migration.OpRename:
		return p.retry(ctx, what, func(ctx context.Context) error {
			err := p.dst.Database("admin").RunCommand(ctx, bson.D{
				{Key: "renameCollection", Value: ev.NS.String()}, {Key: "to", Value: ev.To.String()}, {Key: "dropTarget", Value: true},
			}).Err()
			if mdb.IsNamespaceNotFound(err) {
				return nil // already renamed (replay)
			}
			return err
		})
	case migration.OpCreateIndexes:
		for _, spec := range ev.Indexes {
			name, _ := spec.Lookup("name").StringValueOK()
			err := p.retry(ctx, what+" "+name, func(ctx context.Context) error {
				if p.opts.CreateIndex != nil {
					return p.opts.CreateIndex(ctx, ev.NS, spec)
				}
				return db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: ev.NS.Coll}, {Key: "indexes", Value: bson.A{spec}}}).Err()
			})
			if err != nil {
				return err
			}
		}
		return nil
	case migration.OpDropIndexes:
		for _, name := range ev.IndexNames {
			err := p.retry(ctx, what+" "+name, func(ctx context.Context) error {
				ix := db.Collection(ev.NS.Coll).Indexes()
				var err error
				if name == "*" {
					err = ix.DropAll(ctx)
				} else {
					err = ix.DropOne(ctx, name)
				}
				if mdb.IsIndexNotFound(err) || mdb.IsNamespaceNotFound(err) {
					return nil
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	case migration.OpModify:
		err := p.retry(ctx, what, func(ctx context.Context) error {
			cmd := bson.D{{Key: "collMod", Value: ev.NS.Coll}}
			elems, _ := ev.Options.Elements()
			for _, el := range elems {
				cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
			}
			return db.RunCommand(ctx, cmd, options.RunCmd()).Err()
		})
		if mdb.IsCommandNotFound(err) {
			p.logger.Warn("collection change not applied: the destination has no collMod", "ns", ev.NS.String())
			return nil
		}
		return err
	case migration.OpInvalidate:
		return nil
	}
	return fmt.Errorf("%s: unknown catalog operation", what)
}
