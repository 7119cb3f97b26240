// Package verify compares a source and a destination: per in-scope
// namespace its existence and type, collection options, normalized index
// specs, document count and every document (byte-exact by default, or
// ignoring field order), and reports what differs with example _ids.
//
// Use:
//
//	v, err := verify.New(verify.Options{Source: src, Destination: dst, Repair: true}, logger)
//	rep, err := v.Run(ctx)      // err: could not finish; rep.Equal(): nothing differs
//	json.Marshal(rep)           // or rep.WriteTable(w)
//
// How documents are compared (docs/design/verification.md has the why):
// each side is read once with one unsorted cursor; every document's
// fingerprint (SHA-256 of its bytes, or of a canonical form with keys
// sorted when Options.IgnoreFieldOrder) is summed into one of
// Options.Buckets partitions chosen by a hash of its _id. Memory is
// O(partitions) whatever the collection size, and the server never sorts.
// Only partitions whose (count, sum) differ are read again, their
// fingerprints spilled to disk and joined by _id in bounded memory.
// Documents that differ are re-read from both sides with one $in per batch,
// up to Options.Rechecks times with backoff, so documents still changing
// on a live source are not reported; those differing every time are.
//
// Options.Repair re-copies differing and missing documents from the source,
// deletes extra ones, and checks them again; the report then gives what
// still differs and how many documents were repaired.
//
// A run is resumable: progress is kept in collection ProgressCollection of
// the destination's metadata database (Options.MetadataDB); a Run with the
// same RunID and settings after a crash skips the namespaces already
// finished and the first scan of those already digested.
//
// Report is JSON-friendly: per namespace "namespace", "matched",
// "missing", "extra", "differing", "examples", "indexDiffs", "optionDiffs".
package verify
