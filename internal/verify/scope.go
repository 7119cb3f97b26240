package verify

// This file holds the small namespace discovery verify needs. When
// internal/catalog lands with the same job, it can replace this file.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Filter selects namespaces, in the shape of mongosync's includeNamespaces
// and excludeNamespaces entries: a database (exact or regex) and optionally
// collections (exact names or a regex). A filter without collections covers
// the whole database.
type Filter struct {
	Database         string   `json:"database,omitempty"`
	DatabaseRegex    *Regex   `json:"databaseRegex,omitempty"`
	Collections      []string `json:"collections,omitempty"`
	CollectionsRegex *Regex   `json:"collectionsRegex,omitempty"`
}

// Regex is a pattern with options ("i", "m", "s"), as mongosync takes it.
type Regex struct {
	Pattern string `json:"pattern"`
	Options string `json:"options,omitempty"`
}

func (r *Regex) compile() (*regexp.Regexp, error) {
	p := r.Pattern
	if r.Options != "" {
		for _, o := range r.Options {
			if !strings.ContainsRune("ims", o) {
				return nil, fmt.Errorf("regex %q: option %q not supported (use i, m or s)", r.Pattern, o)
			}
		}
		p = "(?" + r.Options + ")" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", r.Pattern, err)
	}
	return re, nil
}

// scope is a compiled include/exclude filter set.
type scope struct {
	include, exclude []compiledFilter
	metaDB           string
}

type compiledFilter struct {
	db, coll *regexp.Regexp
	dbName   string
	colls    []string
}

func compileFilters(fs []Filter) ([]compiledFilter, error) {
	var out []compiledFilter
	for i, f := range fs {
		var c compiledFilter
		switch {
		case f.Database != "" && f.DatabaseRegex == nil:
			c.dbName = f.Database
		case f.Database == "" && f.DatabaseRegex != nil:
			re, err := f.DatabaseRegex.compile()
			if err != nil {
				return nil, fmt.Errorf("filter %d: databaseRegex: %w", i, err)
			}
			c.db = re
		default:
			return nil, fmt.Errorf("filter %d: give exactly one of database and databaseRegex", i)
		}
		if len(f.Collections) > 0 && f.CollectionsRegex != nil {
			return nil, fmt.Errorf("filter %d: give at most one of collections and collectionsRegex", i)
		}
		c.colls = f.Collections
		if f.CollectionsRegex != nil {
			re, err := f.CollectionsRegex.compile()
			if err != nil {
				return nil, fmt.Errorf("filter %d: collectionsRegex: %w", i, err)
			}
			c.coll = re
		}
		out = append(out, c)
	}
	return out, nil
}

func (c compiledFilter) matchDB(db string) bool {
	if c.db != nil {
		return c.db.MatchString(db)
	}
	return c.dbName == db
}

func (c compiledFilter) match(ns migration.Namespace) bool {
	if !c.matchDB(ns.DB) {
		return false
	}
	switch {
	case c.coll != nil:
		return c.coll.MatchString(ns.Coll)
	case len(c.colls) > 0:
		return slices.Contains(c.colls, ns.Coll)
	}
	return true
}

// systemDBs are never in scope.
var systemDBs = []string{"admin", "local", "config"}

func (s *scope) dbInScope(db string) bool {
	if slices.Contains(systemDBs, db) || db == s.metaDB {
		return false
	}
	if len(s.include) == 0 {
		return true
	}
	for _, f := range s.include {
		if f.matchDB(db) {
			return true
		}
	}
	return false
}

func (s *scope) inScope(ns migration.Namespace) bool {
	if !s.dbInScope(ns.DB) || strings.HasPrefix(ns.Coll, "system.") {
		return false
	}
	if len(s.include) > 0 && !slices.ContainsFunc(s.include, func(f compiledFilter) bool { return f.match(ns) }) {
		return false
	}
	return !slices.ContainsFunc(s.exclude, func(f compiledFilter) bool { return f.match(ns) })
}

// collInfo is one listCollections entry.
type collInfo struct {
	Type    string
	Options bson.Raw
}

// listNamespaces returns the in-scope collections (and views) of one side.
func (s *scope) listNamespaces(ctx context.Context, c *mongo.Client) (map[migration.Namespace]collInfo, error) {
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	out := map[migration.Namespace]collInfo{}
	for _, db := range dbs {
		if !s.dbInScope(db) {
			continue
		}
		cur, err := c.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
		for cur.Next(ctx) {
			e := cur.Current
			name, _ := e.Lookup("name").StringValueOK()
			typ, _ := e.Lookup("type").StringValueOK()
			opts, _ := e.Lookup("options").DocumentOK()
			ns := migration.Namespace{DB: db, Coll: name}
			if s.inScope(ns) {
				if typ == "" {
					typ = "collection"
				}
				out[ns] = collInfo{Type: typ, Options: append(bson.Raw(nil), opts...)}
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
	}
	return out, nil
}
