package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/verify"
)

// verifyFlags are the options of `livemigrate verify`.
type verifyFlags struct {
	source, destination string
	creds               uriCreds
	include, exclude    []string
	filters             string
	output              string
	opts                verify.Options
}

func init() {
	register(func(e *env) *cobra.Command {
		var f verifyFlags
		c := &cobra.Command{
			Use:   "verify --source URI --destination URI",
			Short: "Compare a source and a destination, document by document",
			Long: `Compare every in-scope namespace of a source and a destination: existence,
collection options, indexes, counts and every document (byte-exact unless
--ignore-field-order). Documents that differ are re-read from both sides a few
times before they are reported. Exits 0 only when everything matches, 4 when
something differs.

A killed verify run continues where it stopped when run again with the same
arguments (progress is kept in the destination's ` + verify.DefaultMetadataDB + ` database).
Before anything is written, verify proves the destination is not the source
(a probe document written to the destination must not be visible on the
source) and refuses to run when it is.`,
			Example: `  livemigrate verify --source mongodb://src:27017 --destination mongodb://dst:27017
  livemigrate verify --source ... --destination ... --include shop --exclude shop.logs -o json
  livemigrate verify --source ... --destination ... --repair`,
			Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error { return runVerify(c.Context(), e, &f) },
		}
		fl := c.Flags()
		fl.StringVar(&f.source, "source", "", "source connection string (required)")
		fl.StringVar(&f.destination, "destination", "", "destination connection string (required)")
		f.creds.addFlags(fl)
		fl.StringArrayVar(&f.include, "include", nil, "verify only this database or db.collection (repeatable)")
		fl.StringArrayVar(&f.exclude, "exclude", nil, "skip this database or db.collection (repeatable)")
		fl.StringVar(&f.filters, "filters", "", `JSON file with mongosync-style {"includeNamespaces": [...], "excludeNamespaces": [...]}`)
		fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
		fl.BoolVar(&f.opts.IgnoreFieldOrder, "ignore-field-order", false, "count documents that differ only in field order as equal")
		fl.BoolVar(&f.opts.Repair, "repair", false, "re-copy differing documents from the source, delete extra ones, and check again")
		fl.IntVar(&f.opts.MaxExamples, "max-examples", 10, "example _ids listed per kind of difference")
		fl.IntVar(&f.opts.Rechecks, "rechecks", 5, "times a differing document is re-read before it is reported")
		fl.IntVar(&f.opts.Concurrency, "concurrency", 2, "namespaces verified at once")
		fl.StringVar(&f.opts.RunID, "run-id", "", "name of the resumable run (default: derived from the source and the options)")
		fl.BoolVar(&f.opts.Fresh, "fresh", false, "start over instead of resuming an interrupted run")
		fl.StringVar(&f.opts.MetadataDB, "metadata-db", verify.DefaultMetadataDB, "destination database for progress")
		return c
	})
}

func runVerify(ctx context.Context, e *env, f *verifyFlags) error {
	var err error
	if f.source, err = f.creds.resolve(e.logger, "source", f.source); err != nil {
		return err
	}
	if f.destination, err = f.creds.resolve(e.logger, "destination", f.destination); err != nil {
		return err
	}
	if f.source == "" || f.destination == "" {
		return usageError{errors.New("--source and --destination are required (see 'livemigrate verify --help')")}
	}
	if f.output != "table" && f.output != "json" {
		return usageError{fmt.Errorf("--output %q: want table or json", f.output)}
	}
	if err := f.parseFilters(); err != nil {
		return usageError{err}
	}
	src, dst := mdb.URI(f.source), mdb.URI(f.destination)
	sc, err := mdb.Connect(ctx, "source", src, mdb.ConnectOptions{AppName: "livemigrate verify"})
	if err != nil {
		return err
	}
	defer sc.Disconnect(context.Background())
	dc, err := mdb.Connect(ctx, "destination", dst, mdb.ConnectOptions{AppName: "livemigrate verify"})
	if err != nil {
		return err
	}
	defer dc.Disconnect(context.Background())
	// Before anything is written (the progress goes to the destination):
	// the destination must not be the source.
	if err := proveDistinct(ctx, sc, dc, f.opts.MetadataDB); err != nil {
		return err
	}

	o := f.opts
	o.Source, o.Destination = sc, dc
	if o.RunID == "" {
		s := sha256.Sum256([]byte(src.String() + "\x00" + dst.String()))
		o.RunID = "cli-" + hex.EncodeToString(s[:8])
	}
	v, err := verify.New(o, e.logger)
	if err != nil {
		return usageError{err}
	}
	rep, err := v.Run(ctx)
	if err != nil {
		return err
	}
	if f.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteTable(e.stdout)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if !rep.Equal() {
		t := rep.Totals
		return exitError{code: exitMismatch, err: fmt.Errorf("source and destination differ in %d of %d namespaces (%d missing, %d extra, %d differing documents, %d index and %d option differences)",
			t.NamespacesDiffer, t.Namespaces, t.Missing, t.Extra, t.Differing, t.IndexDifferences, t.OptionDifferences)}
	}
	return nil
}

// proveDistinct refuses a destination that is the source.
func proveDistinct(ctx context.Context, src, dst *mongo.Client, metadataDB string) error {
	si, err := mdb.Probe(ctx, src)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	di, err := mdb.Probe(ctx, dst)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if metadataDB == "" {
		metadataDB = verify.DefaultMetadataDB
	}
	return mdb.ProveDistinct(ctx, src, dst, si, di, metadataDB)
}

// parseFilters turns --include/--exclude/--filters into verify filters.
func (f *verifyFlags) parseFilters() error {
	conv := func(flag string, vals []string) ([]migration.Filter, error) {
		var out []migration.Filter
		for _, v := range vals {
			db, coll, hasColl := strings.Cut(v, ".")
			if db == "" || (hasColl && coll == "") {
				return nil, fmt.Errorf("--%s %q: want <database> or <database>.<collection>", flag, v)
			}
			fl := migration.Filter{Database: db}
			if hasColl {
				fl.Collections = []string{coll}
			}
			out = append(out, fl)
		}
		return out, nil
	}
	var err error
	if f.opts.Include, err = conv("include", f.include); err != nil {
		return err
	}
	if f.opts.Exclude, err = conv("exclude", f.exclude); err != nil {
		return err
	}
	if f.filters == "" {
		return nil
	}
	b, err := os.ReadFile(f.filters)
	if err != nil {
		return fmt.Errorf("--filters: %w", err)
	}
	var file struct {
		Include []migration.Filter `json:"includeNamespaces"`
		Exclude []migration.Filter `json:"excludeNamespaces"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return fmt.Errorf("--filters %s: %w", f.filters, err)
	}
	f.opts.Include = append(f.opts.Include, file.Include...)
	f.opts.Exclude = append(f.opts.Exclude, file.Exclude...)
	return nil
}
