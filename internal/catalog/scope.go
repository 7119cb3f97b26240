package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// DefaultMetadataDB is the database on the destination that holds the
// engine's own state; it is never in scope.
const DefaultMetadataDB = "__livemigrate"

// Scope decides which namespaces a run migrates. It is immutable and safe
// for concurrent use.
type Scope struct {
	include, exclude []migration.Filter
	metadataDB       string
}

// NewScope validates the filters. No include filter means every user
// database; exclude filters win over include filters.
func NewScope(include, exclude []migration.Filter, metadataDB string) (*Scope, error) {
	for i, f := range include {
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("includeNamespaces[%d]: %w", i, err)
		}
	}
	for i, f := range exclude {
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("excludeNamespaces[%d]: %w", i, err)
		}
	}
	if metadataDB == "" {
		metadataDB = DefaultMetadataDB
	}
	return &Scope{include: include, exclude: exclude, metadataDB: metadataDB}, nil
}

// MatchDatabase reports whether some collection of db may be in scope.
func (s *Scope) MatchDatabase(db string) bool {
	if db == "" || migration.IsSystemDatabase(db) || db == s.metadataDB {
		return false
	}
	for _, f := range s.exclude {
		if f.WholeDatabase() && f.MatchDatabase(db) {
			return false
		}
	}
	if len(s.include) == 0 {
		return true
	}
	for _, f := range s.include {
		if f.MatchDatabase(db) {
			return true
		}
	}
	return false
}

// ExactDatabases returns the databases the include filters name, sorted
// and without the ones the scope excludes, when every include filter names
// its database exactly (no databaseRegex); ok is false otherwise (no
// include filters, or a regex), and the databases must be listed.
func (s *Scope) ExactDatabases() (dbs []string, ok bool) {
	if len(s.include) == 0 {
		return nil, false
	}
	for _, f := range s.include {
		if f.DatabaseRegex != nil || f.Database == "" {
			return nil, false
		}
		if s.MatchDatabase(f.Database) && !slices.Contains(dbs, f.Database) {
			dbs = append(dbs, f.Database)
		}
	}
	slices.Sort(dbs)
	return dbs, true
}

// Match reports whether ns is migrated: not a system database or collection,
// not the engine's metadata, selected by the include filters (if any) and by
// no exclude filter.
func (s *Scope) Match(ns migration.Namespace) bool {
	if !s.MatchDatabase(ns.DB) || ns.Coll == "" || ns.IsSystem() {
		return false
	}
	for _, f := range s.exclude {
		if f.Match(ns) {
			return false
		}
	}
	if len(s.include) == 0 {
		return true
	}
	for _, f := range s.include {
		if f.Match(ns) {
			return true
		}
	}
	return false
}

// Fingerprint is a stable text form of the filters, stored with a run so a
// restart with other filters is noticed.
func (s *Scope) Fingerprint() string {
	var b strings.Builder
	b.WriteString("include=")
	for _, f := range s.include {
		b.WriteString(f.String() + ";")
	}
	b.WriteString(" exclude=")
	for _, f := range s.exclude {
		b.WriteString(f.String() + ";")
	}
	return b.String()
}
