package migration

import (
	"fmt"
	"strings"
)

// Namespace names a collection as database + collection.
type Namespace struct {
	DB   string `bson:"db" json:"db"`
	Coll string `bson:"coll" json:"coll"`
}

// ParseNamespace splits "db.coll" at the first dot.
func ParseNamespace(s string) (Namespace, error) {
	db, coll, ok := strings.Cut(s, ".")
	if !ok || db == "" || coll == "" {
		return Namespace{}, fmt.Errorf("namespace %q: want <database>.<collection>", s)
	}
	return Namespace{DB: db, Coll: coll}, nil
}

// String returns "db.coll".
func (n Namespace) String() string { return n.DB + "." + n.Coll }

// IsZero reports whether n names nothing.
func (n Namespace) IsZero() bool { return n.DB == "" && n.Coll == "" }

// IsSystemDatabase reports whether db belongs to the deployment, not to
// its data: admin (users, roles), local (the oplog) and config. They are
// never migrated, captured or verified.
func IsSystemDatabase(db string) bool { return db == "admin" || db == "local" || db == "config" }

// IsSystem reports whether n is never migrated whatever the filters say:
// in a system database (IsSystemDatabase) or a system.* collection.
func (n Namespace) IsSystem() bool {
	return IsSystemDatabase(n.DB) || strings.HasPrefix(n.Coll, "system.")
}
