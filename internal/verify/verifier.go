package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Verifier compares a source and a destination. Create it with New and call
// Run once.
type Verifier struct {
	opts    Options
	logger  *slog.Logger
	scope   *catalog.Scope
	runID   string
	scanned atomic.Int64 // documents read by scans, both sides

	mu       sync.Mutex // guards progress
	progress Progress

	// scanWith is each side's whole-collection read
	// (mdb.ServerInfo.ScanMethod), probed at its first scan; "" until a
	// probe succeeded. Guarded by scanMu.
	scanMu   sync.Mutex
	scanWith [2]mdb.ScanMethod

	// pace, when set, is called every paceEvery documents a scan reads and
	// before every re-read batch; it may sleep (the continuous verifier's
	// throttle) and returns an error only when ctx ends.
	pace func(ctx context.Context) error
}

// Progress is a snapshot of a running verification.
type Progress struct {
	NamespacesTotal int `json:"namespacesTotal"`
	NamespacesDone  int `json:"namespacesDone"`
	// Rechecking is true while some namespace is re-reading differing
	// documents (the moment a live source should have settled by).
	Rechecking bool `json:"rechecking"`
	// DocumentsScanned counts documents read by full scans, both sides.
	DocumentsScanned int64 `json:"documentsScanned"`
}

// New checks opts and returns a Verifier.
func New(opts Options, logger *slog.Logger) (*Verifier, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{opts: opts, logger: logger.With("component", "verify")}
	var err error
	if v.scope, err = catalog.NewScope(opts.Include, opts.Exclude, opts.MetadataDB); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	v.runID = opts.RunID
	if v.runID == "" {
		v.runID = "verify-" + v.settings()
	}
	return v, nil
}

// Progress returns a snapshot of the run's progress; safe for concurrent use.
func (v *Verifier) Progress() Progress {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.progress
	p.DocumentsScanned = v.scanned.Load()
	return p
}

func (v *Verifier) update(f func(*Progress)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f(&v.progress)
}

// Run verifies every in-scope namespace and returns the report. An error
// means verification could not finish (the report is nil); differences are
// not errors: check Report.Equal. A Run interrupted by a crash or ctx is
// resumed by the next Run with the same RunID and settings.
func (v *Verifier) Run(ctx context.Context) (*Report, error) {
	rep := &Report{Strategy: StrategyHash, IgnoreFieldOrder: v.opts.IgnoreFieldOrder, StartedAt: time.Now().UTC()}
	var cat [2]map[migration.Namespace]collInfo
	err := v.sides(ctx, func(ctx context.Context, side int, c *mongo.Client) error {
		return v.retry(ctx, "list namespaces", func(ctx context.Context) error {
			var err error
			if cat[side], err = listNamespaces(ctx, c, v.scope); err != nil {
				return fmt.Errorf("%s: %w", sideName(side), err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var all []migration.Namespace
	for side := range cat {
		for ns := range cat[side] {
			if side == sideDestination {
				if _, ok := cat[sideSource][ns]; ok {
					continue
				}
			}
			all = append(all, ns)
		}
	}
	slices.SortFunc(all, func(a, b migration.Namespace) int { return cmp.Compare(a.String(), b.String()) })
	v.update(func(p *Progress) { p.NamespacesTotal = len(all) })

	st := v.progressStore()
	resumed, err := st.begin(ctx, v.settings(), v.opts.Fresh)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	saved := map[string]nsProgress{}
	if resumed {
		if saved, err = st.load(ctx); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		v.logger.Info("resuming verification", "run", v.runID, "namespaces_saved", len(saved))
	}
	v.logger.Info("verification started", "run", v.runID, "namespaces", len(all), "strategy", rep.Strategy,
		"ignore_field_order", v.opts.IgnoreFieldOrder, "repair", v.opts.Repair)

	rep.Namespaces = make([]NamespaceResult, len(all))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.opts.Concurrency)
	for i, ns := range all {
		var s, d *collInfo
		if ci, ok := cat[sideSource][ns]; ok {
			s = &ci
		}
		if ci, ok := cat[sideDestination][ns]; ok {
			d = &ci
		}
		g.Go(func() error {
			res, err := v.namespace(gctx, st, ns, s, d, saved[ns.String()], nil)
			if err != nil {
				return fmt.Errorf("verify %s: %w", ns, err)
			}
			rep.Namespaces[i] = res
			v.update(func(p *Progress) { p.NamespacesDone++ })
			v.logger.Info("namespace verified", "ns", ns.String(), "equal", res.Equal(), "matched", res.Matched,
				"missing", res.Missing, "extra", res.Extra, "differing", res.Differing, "rechecked", res.Rechecked, "resumed", res.Resumed)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep.total()
	rep.FinishedAt = time.Now().UTC()
	if err := st.finish(ctx); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	v.logger.Info("verification finished", "equal", rep.Equal(), "namespaces", rep.Totals.Namespaces,
		"differ", rep.Totals.NamespacesDiffer, "duration", rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond))
	return rep, nil
}

func sideName(side int) string {
	if side == sideSource {
		return "source"
	}
	return "destination"
}

// retry runs one idempotent step with the shared retry policy.
func (v *Verifier) retry(ctx context.Context, what string, op func(context.Context) error) error {
	return mdb.Retry(ctx, v.logger, what, mdb.DefaultRetry, op)
}

// namespace verifies one namespace, resuming from p where it can. With a
// target (the continuous verifier's commit), only its documents are
// compared. st may be nil: nothing is saved.
func (v *Verifier) namespace(ctx context.Context, st *store, ns migration.Namespace, s, d *collInfo, p nsProgress, t *target) (NamespaceResult, error) {
	if p.Stage == stageDone {
		var res NamespaceResult
		if err := json.Unmarshal([]byte(p.Result), &res); err != nil {
			return res, fmt.Errorf("decode saved result: %w", err)
		}
		res.Resumed = true
		return res, nil
	}
	res := NamespaceResult{Namespace: ns.String(), IndexDiffs: []IndexDiff{}, OptionDiffs: []OptionDiff{},
		Examples: Examples{Missing: []string{}, Extra: []string{}, Differing: []string{}}}
	if s != nil {
		res.Source = Side{Exists: true, Type: s.Type}
	}
	if d != nil {
		res.Destination = Side{Exists: true, Type: d.Type}
	}
	if s != nil && d != nil {
		res.OptionDiffs = append(res.OptionDiffs, compareOptions(s.Options, d.Options)...)
	}
	err := v.retry(ctx, "compare indexes of "+ns.String(), func(ctx context.Context) error {
		diffs, err := compareIndexes(ctx, v.opts.Source, v.opts.Destination, ns)
		res.IndexDiffs = append(res.IndexDiffs[:0], diffs...)
		return err
	})
	if err != nil {
		return res, err
	}
	isColl := func(c *collInfo) bool { return c == nil || c.Type == "collection" }
	switch {
	case !isColl(s) || !isColl(d):
	case t != nil:
		if err := v.targeted(ctx, ns, &res, t); err != nil {
			return res, err
		}
	default:
		if err := v.documents(ctx, st, ns, &res, p); err != nil {
			return res, err
		}
	}
	if st == nil {
		return res, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return res, fmt.Errorf("encode result: %w", err)
	}
	err = v.retry(ctx, "save verification progress", func(ctx context.Context) error {
		return st.save(ctx, nsProgress{Namespace: ns.String(), Stage: stageDone, Result: string(b)})
	})
	return res, err
}

// documents compares the documents of ns and fills the counts of res.
func (v *Verifier) documents(ctx context.Context, st *store, ns migration.Namespace, res *NamespaceResult, p nsProgress) error {
	if p.Stage != stageDigested {
		var dg [2][]digest
		err := v.retry(ctx, "digest "+ns.String(), func(ctx context.Context) error {
			var err error
			dg, err = v.digests(ctx, ns)
			return err
		})
		if err != nil {
			return err
		}
		p = nsProgress{Namespace: ns.String(), Stage: stageDigested}
		for b := range dg[sideSource] {
			s, d := dg[sideSource][b], dg[sideDestination][b]
			p.SourceCount += s.Count
			p.DestCount += d.Count
			if s != d {
				p.DiffBuckets = append(p.DiffBuckets, b)
				p.BucketSizes = append(p.BucketSizes, s.Count+d.Count)
			}
		}
		err = v.retry(ctx, "save verification progress", func(ctx context.Context) error { return st.save(ctx, p) })
		if err != nil {
			return err
		}
	}
	res.Source.Count, res.Destination.Count = p.SourceCount, p.DestCount
	res.Matched = p.SourceCount
	if len(p.DiffBuckets) == 0 {
		return nil
	}
	v.logger.Info("partitions differ, comparing their documents", "ns", ns.String(), "partitions", len(p.DiffBuckets))

	var cands *recordFile
	defer func() {
		if cands != nil {
			cands.close()
		}
	}()
	err := v.retry(ctx, "compare partitions of "+ns.String(), func(ctx context.Context) error {
		if cands != nil {
			cands.close() // a failed attempt's partial output
		}
		var err error
		if cands, err = newRecordFile(v.opts.TempDir); err != nil {
			return err
		}
		return v.diffBuckets(ctx, ns, p.DiffBuckets, p.BucketSizes, cands)
	})
	if err != nil {
		return err
	}
	v.update(func(p *Progress) { p.Rechecking = true })
	return v.settle(ctx, ns, cands, res)
}

// settle rechecks the candidate _ids of ns, counts what still differs in
// res (res.Found keeps it), and with Options.Repair repairs those documents
// and counts what differs after the repair.
func (v *Verifier) settle(ctx context.Context, ns migration.Namespace, cands *recordFile, res *NamespaceResult) error {
	final, n, err := v.recheck(ctx, ns, cands)
	res.Rechecked += n
	defer final.close()
	if err != nil {
		return err
	}
	if err := v.summarize(final, res); err != nil {
		return err
	}
	if final.n > 0 {
		res.Found = &Counts{Missing: res.Missing, Extra: res.Extra, Differing: res.Differing}
	}
	if v.opts.Repair && final.n > 0 {
		before := *res
		repaired, err := v.repair(ctx, ns, final)
		if err != nil {
			return err
		}
		res.Repaired = repaired
		after, n, err := v.recheck(ctx, ns, final)
		res.Rechecked += n
		defer after.close()
		if err != nil {
			return err
		}
		if err := v.summarize(after, res); err != nil {
			return err
		}
		res.Destination.Count += (before.Missing - res.Missing) - (before.Extra - res.Extra)
		v.logger.Info("destination repaired", "ns", ns.String(), "documents", repaired, "still_differ", after.n)
	}
	res.Matched = res.Source.Count - res.Missing - res.Differing
	return nil
}

// paceEvery is how many documents a scan reads between calls of pace.
const paceEvery = 256

// paced counts one document read by a scan and calls pace every paceEvery.
func (v *Verifier) paced(ctx context.Context, n *int) error {
	if v.pace == nil {
		return nil
	}
	if *n++; *n%paceEvery != 0 {
		return nil
	}
	return v.pace(ctx)
}
