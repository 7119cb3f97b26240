package engine

import (
	"testing"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// TestByteEstimateFollowsCopiedDocuments: a size estimate 3x too large (as
// FerretDB's are) is corrected by the mean size of the documents copied.
func TestByteEstimateFollowsCopiedDocuments(t *testing.T) {
	e := &Engine{}
	e.prog.Namespaces = []migration.NamespaceProgress{{EstimatedDocuments: 1000, EstimatedBytes: 300_000}}
	e.prog.CollectionCopy.EstimatedTotalDocuments = 1000
	e.prog.CollectionCopy.EstimatedTotalBytes = 300_000
	n := &e.prog.Namespaces[0]

	e.addCountsLocked(n, 250, 25_000) // 100-byte documents
	cc := e.prog.CollectionCopy
	if n.EstimatedBytes != 100_000 || cc.EstimatedTotalBytes != 100_000 {
		t.Fatalf("after a quarter: estimate %d (total %d), want 100000", n.EstimatedBytes, cc.EstimatedTotalBytes)
	}
	e.addCountsLocked(n, 1000, 100_000) // more documents than estimated
	cc = e.prog.CollectionCopy
	if n.EstimatedDocuments != 1250 || n.EstimatedBytes != 125_000 || cc.EstimatedTotalBytes != 125_000 || cc.EstimatedCopiedBytes != 125_000 {
		t.Fatalf("past the estimate: docs %d bytes %d total %d copied %d, want 1250/125000/125000/125000",
			n.EstimatedDocuments, n.EstimatedBytes, cc.EstimatedTotalBytes, cc.EstimatedCopiedBytes)
	}
}
