package capture

import (
	"context"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Catalog is what the oplog reader compares to notice DDL on servers whose
// oplog carries none (FerretDB): collections in scope, their options, and
// their indexes by name.
type Catalog map[migration.Namespace]CollectionInfo

// CollectionInfo is one collection's options and index specs (by name).
type CollectionInfo struct {
	Options bson.Raw
	Indexes map[string]bson.Raw
	// FromData marks a collection known only from oplog entries for its
	// documents, not yet from a catalog listing.
	FromData bool
}

// noteData records that ns exists because the oplog holds writes to it.
// Without it a collection created and dropped between two catalog listings
// was never seen: its documents reached the destination but its drop did
// not. The next listing settles it: gone → drop; there → create (with its
// options, idempotent) and its indexes, as for a collection new to it.
func (c Catalog) noteData(ns migration.Namespace) {
	if _, ok := c[ns]; !ok {
		c[ns] = CollectionInfo{Indexes: map[string]bson.Raw{}, FromData: true}
	}
}

// ReadCatalog lists the collections in scope on c with options and indexes.
// Collections that vanish while it lists are skipped.
func ReadCatalog(ctx context.Context, c *mongo.Client, filter Filter) (Catalog, error) {
	if filter == nil {
		filter = InScope("")
	}
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	cat := Catalog{}
	for _, db := range dbs {
		if !filter(migration.Namespace{DB: db}) {
			continue
		}
		specs, err := c.Database(db).ListCollectionSpecifications(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
		for _, s := range specs {
			ns := migration.Namespace{DB: db, Coll: s.Name}
			if s.Type != "collection" || !filter(ns) {
				continue
			}
			info := CollectionInfo{Options: s.Options, Indexes: map[string]bson.Raw{}}
			cur, err := c.Database(db).Collection(s.Name).Indexes().List(ctx)
			if err != nil {
				continue // dropped while listing: the next snapshot settles it
			}
			for cur.Next(ctx) {
				spec, err := withoutKeys(cur.Current, "v", "ns")
				if err != nil {
					_ = cur.Close(ctx)
					return nil, err
				}
				name, _ := spec.Lookup("name").StringValueOK()
				if name != "_id_" {
					info.Indexes[name] = spec
				}
			}
			err = cur.Err()
			_ = cur.Close(ctx)
			if err != nil {
				continue
			}
			cat[ns] = info
		}
	}
	return cat, nil
}

// diffCatalog returns the DDL events that turn old into cur, in a safe
// order: drops first, then creates, then index changes. A rename shows as
// a drop and a create: FerretDB logs no oplog entries for the documents a
// rename moves, so those documents reach the destination only through the
// commit's verification and repair (docs/design/capture.md).
func diffCatalog(old, cur Catalog) []migration.Event {
	var gone, added []migration.Namespace
	for ns := range old {
		if _, ok := cur[ns]; !ok {
			gone = append(gone, ns)
		}
	}
	for ns := range cur {
		if o, ok := old[ns]; !ok || o.FromData {
			added = append(added, ns)
		}
	}
	byName := func(s []migration.Namespace) {
		sort.Slice(s, func(i, j int) bool { return s[i].String() < s[j].String() })
	}
	byName(gone)
	byName(added)
	var evs []migration.Event
	for _, g := range gone {
		evs = append(evs, migration.Event{Op: migration.OpDrop, NS: g})
	}
	for _, a := range added {
		evs = append(evs, migration.Event{Op: migration.OpCreate, NS: a, Options: cur[a].Options})
		if ix := indexEvents(a, nil, cur[a].Indexes); len(ix) > 0 {
			evs = append(evs, ix...)
		}
	}
	var both []migration.Namespace
	for ns := range cur {
		if o, ok := old[ns]; ok && !o.FromData {
			both = append(both, ns)
		}
	}
	byName(both)
	for _, ns := range both {
		evs = append(evs, indexEvents(ns, old[ns].Indexes, cur[ns].Indexes)...)
	}
	return evs
}

// indexEvents compares index sets by name and key; an index whose key
// changed under the same name is dropped and created again.
func indexEvents(ns migration.Namespace, old, cur map[string]bson.Raw) []migration.Event {
	var dropped []string
	var created []bson.Raw
	for name, spec := range old {
		if c, ok := cur[name]; !ok || !c.Lookup("key").Equal(spec.Lookup("key")) {
			dropped = append(dropped, name)
		}
	}
	names := make([]string, 0, len(cur))
	for name := range cur {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if o, ok := old[name]; !ok || !o.Lookup("key").Equal(cur[name].Lookup("key")) {
			created = append(created, cur[name])
		}
	}
	sort.Strings(dropped)
	var evs []migration.Event
	if len(dropped) > 0 {
		evs = append(evs, migration.Event{Op: migration.OpDropIndexes, NS: ns, IndexNames: dropped})
	}
	if len(created) > 0 {
		evs = append(evs, migration.Event{Op: migration.OpCreateIndexes, NS: ns, Indexes: created})
	}
	return evs
}
