package mdb

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Storage is what stores a server's data, as far as a copy's index builds
// depend on it.
type Storage string

// Storages DetectStorage tells apart.
const (
	// StorageMongoDB is MongoDB's own storage engine.
	StorageMongoDB Storage = "MongoDB"
	// StorageSQLite is FerretDB on SQLite: every index is an expression
	// over the document's JSON text.
	StorageSQLite Storage = "FerretDB/SQLite"
	// StoragePostgreSQL is FerretDB on PostgreSQL.
	StoragePostgreSQL Storage = "FerretDB/PostgreSQL"
	// StorageUnknown is a FerretDB whose plan DetectStorage does not
	// recognize.
	StorageUnknown Storage = "FerretDB/unknown"
)

// IndexesFirstMaxDocuments is the largest collection, in documents, whose
// secondary indexes a copy to StorageSQLite builds before its documents.
//
// A SQLite index on FerretDB is an expression over the JSON text, so an
// index built after the documents parses every row again, while an insert
// parses a row once for all the table's indexes. That is cheaper while the
// indexes are small. Measured with 4 concurrent collections of 1.2 KB
// documents and two secondary indexes each (median of 3 interleaved rounds
// of copy time, indexes first ÷ indexes after): 0.88 at 10,000 documents
// per collection, 0.89 at 20,000, 1.01 at 30,000, and 1.14 at 100,000,
// where random inserts into index B-trees larger than SQLite's page cache
// (2 MB by default) write most of an index's pages at every batch
// (docs/design/copy.md).
const IndexesFirstMaxDocuments = 20_000

// IndexesFirstUpTo is the largest collection, in documents, whose secondary
// indexes a copy to this storage builds before the documents rather than
// after them; 0 means after them always. Only FerretDB on SQLite gains by
// it (IndexesFirstMaxDocuments); FerretDB on PostgreSQL was slower for it
// even at 10,000 documents, and MongoDB builds an index from sorted keys
// far more cheaply than it maintains one under random inserts.
func (s Storage) IndexesFirstUpTo() int64 {
	if s == StorageSQLite {
		return IndexesFirstMaxDocuments
	}
	return 0
}

// DetectStorage says what stores the data of the server behind c, described
// by info. For FerretDB it asks for the plan of a find on db.coll, which must
// exist (FerretDB plans nothing for a missing collection): its SQLite backend
// returns the rows of SQLite's EXPLAIN QUERY PLAN as an array of strings,
// its PostgreSQL backend PostgreSQL's plan as a document.
func DetectStorage(ctx context.Context, c *mongo.Client, info ServerInfo, db, coll string) (Storage, error) {
	if info.FerretDB == "" {
		return StorageMongoDB, nil
	}
	res, err := runRaw(ctx, c, db, bson.D{
		{Key: "explain", Value: bson.D{{Key: "find", Value: coll}, {Key: "filter", Value: bson.D{}}}},
		{Key: "verbosity", Value: "queryPlanner"},
	})
	if err != nil {
		return StorageUnknown, fmt.Errorf("explain a find on %s.%s: %w", db, coll, err)
	}
	switch res.Lookup("queryPlanner", "Plan").Type {
	case bson.TypeArray:
		return StorageSQLite, nil
	case bson.TypeEmbeddedDocument:
		return StoragePostgreSQL, nil
	}
	return StorageUnknown, nil
}
