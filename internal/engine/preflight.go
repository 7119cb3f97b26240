package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// PreflightReport is what the start checks found. Run refuses to start unless Err
// is nil, and validation reports each field as a check, so a validation
// without failures means the engine starts.
type PreflightReport struct {
	Source, Destination mdb.ServerInfo
	// Identity is what the run is (or would be) bound to.
	Identity checkpoint.Identity

	// The checks, in the order Err reports them; nil means passed.
	// ChangeHistory: the source's topology and change history
	// (mdb.ErrNoChangeHistory). Versions: mdb.CheckVersions. Distinct:
	// mdb.ProveDistinct (mdb.ErrSameDeployment). Metadata: the destination
	// holds the unfinished state of another run (*checkpoint.MismatchError).
	// Namespaces: in-scope namespaces exist on the destination of a new run
	// (ErrDestinationNotEmpty).
	ChangeHistory, Versions, Distinct, Metadata, Namespaces error

	// Resume is the stored run this start resumes (nil for a new run).
	Resume *checkpoint.Run
	// ClearMetadata, when not "", says why the metadata database holds
	// state the run drops before it writes: a finished run, or (with
	// DropDestinationData) another run.
	ClearMetadata string
	// Collections are the source's in-scope collections.
	Collections []catalog.Collection
	// Existing are the in-scope namespaces a new run finds on the
	// destination (dropped first with DropDestinationData).
	Existing []migration.Namespace
}

// Err joins the failed checks (nil when the run can start).
func (p *PreflightReport) Err() error {
	return errors.Join(p.ChangeHistory, p.Versions, p.Distinct, p.Metadata, p.Namespaces)
}

// Preflight runs every check a start needs, writing nothing but the
// identity probe's nonce (into opts.MetadataDB on dst, removed again): the
// source's topology and change history, versions, that source and
// destination are different deployments, the destination's metadata and
// namespaces. It returns an error only when a check cannot be made.
func Preflight(ctx context.Context, src, dst *mongo.Client, opts Options) (*PreflightReport, error) {
	if opts.MetadataDB == "" {
		opts.MetadataDB = catalog.DefaultMetadataDB
	}
	scope, err := catalog.NewScope(opts.Include, opts.Exclude, opts.MetadataDB)
	if err != nil {
		return nil, err
	}
	// The source's catalog is listed while the other checks run: on
	// FerretDB listDatabases walks every page of the data, and nothing
	// below depends on the list but the destination's namespaces.
	lctx, cancelList := context.WithCancel(ctx)
	defer cancelList()
	type listed struct {
		colls []catalog.Collection
		err   error
	}
	list := make(chan listed, 1)
	go func() {
		colls, err := catalog.List(lctx, src, scope)
		list <- listed{colls, err}
	}()
	p := &PreflightReport{}
	// The two probes are independent: one round trip chain, not two.
	var dstErr error
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		p.Destination, dstErr = mdb.Probe(ctx, dst)
	}()
	p.Source, err = mdb.Probe(ctx, src)
	<-probed
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if dstErr != nil {
		return nil, fmt.Errorf("destination: %w", dstErr)
	}
	p.ChangeHistory = p.Source.ChangeHistory()
	if err := mdb.CheckVersions(p.Source, p.Destination, opts.MinVersion); err != nil {
		p.Versions = fmt.Errorf("versions: %w", err)
	}
	if p.Distinct = mdb.ProveDistinct(ctx, src, dst, p.Source, p.Destination, opts.MetadataDB); p.Distinct != nil && !errors.Is(p.Distinct, mdb.ErrSameDeployment) {
		return nil, p.Distinct
	}
	if p.Distinct != nil {
		// Same deployment: what the destination holds is the source's; say nothing more.
		return p, nil
	}

	p.Identity = checkpoint.Identity{Source: opts.SourceID, Destination: opts.DestinationID, Filters: scope.Fingerprint(), Migration: opts.MigrationID}
	if p.Identity.Source == "" {
		if p.Identity.Source, err = p.Source.Fingerprint(opts.Source); err != nil {
			return nil, fmt.Errorf("identify the source: %w", err)
		}
	}
	if p.Identity.Destination == "" {
		if p.Identity.Destination, err = p.Destination.Fingerprint(opts.Destination); err != nil {
			return nil, fmt.Errorf("identify the destination: %w", err)
		}
	}
	store := checkpoint.Open(dst, opts.MetadataDB, discard)
	stored, found, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	if found {
		var rep CommitReport
		finished, err := store.LoadState(ctx, stateKeyCommit, &rep)
		if err != nil {
			return nil, err
		}
		same := stored.Identity == p.Identity
		switch {
		// A finished run resumes only under its migration ID (to report
		// again, after a restart between commit and report); without an ID
		// a start after a finished run is a new migration.
		case same && (!finished || opts.MigrationID != ""):
			p.Resume = stored
		case finished:
			p.ClearMetadata = "the metadata of a finished migration"
		case opts.DropDestinationData:
			p.ClearMetadata = "the metadata of another, unfinished migration (dropDestinationData)"
		default:
			p.Metadata = &checkpoint.MismatchError{DB: opts.MetadataDB, Stored: stored.Identity, Wanted: p.Identity}
		}
	}
	l := <-list
	if l.err != nil {
		return nil, fmt.Errorf("source catalog: %w", l.err)
	}
	p.Collections = l.colls
	if p.Resume != nil {
		return p, nil
	}
	nss := make([]migration.Namespace, len(p.Collections))
	for i, c := range p.Collections {
		nss[i] = c.NS
	}
	if p.Existing, err = catalog.Exists(ctx, dst, nss); err != nil {
		return nil, err
	}
	if len(p.Existing) > 0 && !opts.DropDestinationData {
		p.Namespaces = fmt.Errorf("%w: %v; drop them, exclude them, or set dropDestinationData to let the engine drop exactly these", ErrDestinationNotEmpty, p.Existing)
	}
	return p, nil
}

var discard = slog.New(slog.DiscardHandler)
