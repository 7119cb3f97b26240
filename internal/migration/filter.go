package migration

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Filter selects namespaces in mongosync's includeNamespaces /
// excludeNamespaces shape: a database (exact or regex) and optionally
// collections in it (exact names or a regex). A filter without collections
// matches every collection of the database.
type Filter struct {
	Database         string   `json:"database,omitempty" bson:"database,omitempty"`
	DatabaseRegex    *Regex   `json:"databaseRegex,omitempty" bson:"databaseRegex,omitempty"`
	Collections      []string `json:"collections,omitempty" bson:"collections,omitempty"`
	CollectionsRegex *Regex   `json:"collectionsRegex,omitempty" bson:"collectionsRegex,omitempty"`
}

// Regex is a pattern with MongoDB-style options ("i", "m", "s", "x" is not supported).
type Regex struct {
	Pattern string `json:"pattern" bson:"pattern"`
	Options string `json:"options,omitempty" bson:"options,omitempty"`
}

func (r *Regex) compile() (*regexp.Regexp, error) {
	flags := ""
	for _, o := range r.Options {
		switch o {
		case 'i', 'm', 's':
			flags += string(o)
		default:
			return nil, fmt.Errorf("regex option %q is not supported (use i, m or s)", o)
		}
	}
	p := r.Pattern
	if flags != "" {
		p = "(?" + flags + ")" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", r.Pattern, err)
	}
	return re, nil
}

// Validate reports a filter that names no database or has a bad regex.
func (f Filter) Validate() error {
	if (f.Database == "") == (f.DatabaseRegex == nil) {
		return fmt.Errorf("namespace filter: give exactly one of database or databaseRegex")
	}
	if len(f.Collections) > 0 && f.CollectionsRegex != nil {
		return fmt.Errorf("namespace filter on %s: give at most one of collections or collectionsRegex", f.describeDB())
	}
	for _, r := range []*Regex{f.DatabaseRegex, f.CollectionsRegex} {
		if r != nil {
			if _, err := r.compile(); err != nil {
				return fmt.Errorf("namespace filter on %s: %w", f.describeDB(), err)
			}
		}
	}
	return nil
}

func (f Filter) describeDB() string {
	if f.DatabaseRegex != nil {
		return "/" + f.DatabaseRegex.Pattern + "/"
	}
	return f.Database
}

// Match reports whether ns is selected by f. An invalid regex matches nothing
// (Validate first).
func (f Filter) Match(ns Namespace) bool {
	return f.MatchDatabase(ns.DB) && f.matchColl(ns.Coll)
}

// MatchDatabase reports whether f selects database db (some or all of it).
func (f Filter) MatchDatabase(db string) bool {
	if f.DatabaseRegex != nil {
		re, err := f.DatabaseRegex.compile()
		return err == nil && re.MatchString(db)
	}
	return f.Database == db
}

// WholeDatabase reports whether f selects every collection of its databases.
func (f Filter) WholeDatabase() bool {
	return len(f.Collections) == 0 && f.CollectionsRegex == nil
}

func (f Filter) matchColl(coll string) bool {
	switch {
	case f.CollectionsRegex != nil:
		re, err := f.CollectionsRegex.compile()
		return err == nil && re.MatchString(coll)
	case len(f.Collections) > 0:
		return slices.Contains(f.Collections, coll)
	}
	return true
}

// String renders f compactly for logs and messages.
func (f Filter) String() string {
	var b strings.Builder
	b.WriteString(f.describeDB())
	switch {
	case f.CollectionsRegex != nil:
		b.WriteString(".{/" + f.CollectionsRegex.Pattern + "/}")
	case len(f.Collections) > 0:
		b.WriteString(".{" + strings.Join(f.Collections, ",") + "}")
	default:
		b.WriteString(".*")
	}
	return b.String()
}
