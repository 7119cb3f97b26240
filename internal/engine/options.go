package engine

import (
	"errors"
	"fmt"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/clone"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Options configures a sync run. A restart must pass the same Source,
// Destination (deployments, not necessarily the same connection strings) and
// filters to resume.
type Options struct {
	Source, Destination mdb.URI

	// SourceID and DestinationID override the deployment fingerprints the run
	// is bound to (default: replica-set name and members from hello, or the
	// connection string's hosts for mongos and standalone servers).
	SourceID, DestinationID string

	// MigrationID names the migration (the control plane's ID; "" on the
	// command line). It is part of the run's identity: a start under the
	// same ID after a commit only reports again, a start under another ID
	// (or none) after a finished run is a new migration.
	MigrationID string

	// MinVersion, when set (e.g. "8.0.0"), is a minimum server version both
	// sides must have on top of the supported releases (mdb.CheckVersions).
	MinVersion string

	// Include and Exclude select namespaces (mongosync's shape). No Include
	// means every user database.
	Include, Exclude []migration.Filter

	// DropDestinationData drops in-scope namespaces that already exist on the
	// destination before a new run, and the metadata of another run; without
	// it such a run is refused. The metadata of a finished run is dropped
	// either way; the run being resumed is never dropped.
	DropDestinationData bool

	// RefusalPolicy says what happens when the destination refuses a
	// collection, view or index: fail (default) or skip with a warning.
	RefusalPolicy catalog.Policy

	// MetadataDB is the destination database holding the engine's state
	// (default "__livemigrate").
	MetadataDB string

	// Copy tunes the initial copy.
	Copy clone.Options

	// IndexesFirstUpTo is the largest collection, in estimated documents,
	// whose secondary indexes the copy builds before its documents instead
	// of after them: 0 takes the destination's choice
	// (mdb.Storage.IndexesFirstUpTo), a negative value builds every
	// collection's indexes after its documents.
	IndexesFirstUpTo int64

	// Verification is how the commit verifies (default VerifyContinuous).
	Verification VerifyMode

	// StopAfterCopy makes Run return once every namespace is copied and
	// indexed, without change application or commit (copy benchmarks, tests,
	// one-shot copies of a quiet source). Unique indexes stay relaxed.
	StopAfterCopy bool
}

func (o Options) validate() error {
	var errs []error
	if err := o.Source.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("source: %w", err))
	}
	if err := o.Destination.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("destination: %w", err))
	}
	if err := o.RefusalPolicy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Verification.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Copy.Scan.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("copy: %w", err))
	}
	return errors.Join(errs...)
}

// VerifyMode is how the commit verifies the destination
// (docs/design/commit.md).
type VerifyMode string

// Verification modes.
const (
	// VerifyContinuous compares every namespace in the background while
	// changes are applied; the commit compares (and repairs) only the
	// documents changed since, so the downtime does not grow with the data.
	VerifyContinuous VerifyMode = "continuous"
	// VerifyFull compares (and repairs) every document inside the downtime.
	VerifyFull VerifyMode = "full"
	// VerifyAfter marks the destination writable first, then compares every
	// document and reports differences without repairing them.
	VerifyAfter VerifyMode = "after"
)

// VerifyModes lists the modes, default first.
func VerifyModes() []VerifyMode { return []VerifyMode{VerifyContinuous, VerifyFull, VerifyAfter} }

// Validate accepts the modes and "" (the default).
func (m VerifyMode) Validate() error {
	switch m {
	case "", VerifyContinuous, VerifyFull, VerifyAfter:
		return nil
	}
	return fmt.Errorf("verification mode %q: want continuous (background passes, only changes rechecked at commit), full (everything compared inside the downtime) or after (compared after the destination is writable, not repaired)", string(m))
}
