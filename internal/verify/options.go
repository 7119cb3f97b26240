package verify

import (
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Strategy is how documents are partitioned and compared.
type Strategy string

// Strategies. Only StrategyHash is built; see docs/design/verification.md for
// why it is the default on every server and what an _id-range strategy
// would add on MongoDB.
const (
	// StrategyHash scans each side once, unsorted, and sums per-document
	// fingerprints into buckets chosen by a hash of the _id. Memory is
	// O(buckets); only buckets whose sums differ are compared document by
	// document, in a second scan.
	StrategyHash Strategy = "hash-partitions"
)

// DefaultMetadataDB is the destination database holding livemigrate's own
// state. Verification stores its progress in collection ProgressCollection
// there, beside internal/checkpoint's collections.
const DefaultMetadataDB = catalog.DefaultMetadataDB

// ProgressCollection holds resumable verification progress.
const ProgressCollection = "verify_progress"

// Options configures a Verifier. Zero fields take the defaults shown.
type Options struct {
	// Source and Destination are connected clients; the Verifier does not
	// disconnect them.
	Source, Destination *mongo.Client

	// Include and Exclude select namespaces as mongosync does: a namespace
	// is verified when it matches an Include filter (or there are none) and
	// no Exclude filter. admin, local, config, the metadata database and
	// system.* collections are never verified.
	Include, Exclude []migration.Filter

	// IgnoreFieldOrder counts documents that differ only in field order as
	// equal. Types still matter: int32(1) and int64(1) differ.
	IgnoreFieldOrder bool

	// Repair re-copies documents that differ or are missing from the source
	// to the destination, deletes extra ones, then checks them again. Index
	// and option differences are reported, not repaired.
	Repair bool

	// MaxExamples bounds the example _ids per kind of difference (default 10).
	MaxExamples int

	// Rechecks is how many times a differing document is re-read from both
	// sides before it is reported (default 5); RecheckBackoff is the first
	// pause between rounds, doubled each round up to 8 s (default 500 ms).
	Rechecks       int
	RecheckBackoff time.Duration

	// Buckets is the number of hash partitions per collection (default 4096).
	Buckets int

	// MemoryEntries bounds how many (_id, fingerprint) pairs of differing
	// partitions are held in memory at once (default 200 000, ~30 MB).
	MemoryEntries int

	// Concurrency is how many namespaces are verified at once (default 2).
	Concurrency int

	// MetadataDB is the destination database for progress (default DefaultMetadataDB).
	MetadataDB string

	// RunID names the resumable run: a run with the RunID of an interrupted
	// one continues from the namespaces that one finished. The engine passes
	// its migration id; empty means a fingerprint of the filters and mode.
	RunID string

	// Fresh discards the progress of an interrupted run instead of resuming it.
	Fresh bool

	// TempDir holds spill files of differing partitions (default os.TempDir()).
	TempDir string

	// InBatch is how many _ids one $in re-read carries (default 1000).
	InBatch int

	// PointLookups: a re-read batch with at most this many string or
	// ObjectId _ids reads each of them with its own equality find,
	// PointConcurrency (default 2) at a time, instead of putting them in
	// the $in (default 8; negative: always $in). On FerretDB an equality
	// find of such an _id is filtered inside SQL and costs about a tenth
	// of an $in, which decodes every document (verification.md).
	PointLookups     int
	PointConcurrency int
}

// DefaultPointLookups is Options.PointLookups' default: below the
// measured crossover (~10 documents one after the other, ~17 four at a
// time, on FerretDB/SQLite at 20 000 and 200 000 documents).
const DefaultPointLookups = 8

func (o *Options) setDefaults() error {
	if o.Source == nil || o.Destination == nil {
		return errors.New("verify: Source and Destination clients are required")
	}
	if o.MaxExamples <= 0 {
		o.MaxExamples = 10
	}
	if o.Rechecks <= 0 {
		o.Rechecks = 5
	}
	if o.RecheckBackoff <= 0 {
		o.RecheckBackoff = 500 * time.Millisecond
	}
	if o.Buckets <= 0 {
		o.Buckets = 4096
	}
	if o.MemoryEntries <= 0 {
		o.MemoryEntries = 200_000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.MetadataDB == "" {
		o.MetadataDB = DefaultMetadataDB
	}
	if o.InBatch <= 0 {
		o.InBatch = 1000
	}
	if o.PointLookups == 0 {
		o.PointLookups = DefaultPointLookups
	}
	if o.PointConcurrency <= 0 {
		o.PointConcurrency = 2
	}
	if o.Buckets > 1<<20 {
		return fmt.Errorf("verify: Buckets %d: at most %d", o.Buckets, 1<<20)
	}
	return nil
}
