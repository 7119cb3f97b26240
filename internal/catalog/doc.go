// Package catalog is the sync engine's view of collections and indexes: which
// namespaces are in scope (include/exclude filters in mongosync's shape), the
// options each collection was created with, index specs normalized for
// createIndexes, creating them on the destination, relaxing unique indexes
// during sync and restoring them at commit, and per-namespace / per-index
// reports of what the destination refused, with the server's reason.
package catalog
