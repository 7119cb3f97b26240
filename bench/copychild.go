package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// childResult is what a copy child reports: its wall time and, per
// collection, where the time went.
type childResult struct {
	Seconds float64 `json:"seconds"`
	// SetupSeconds is the time from the child's start to its first read of
	// documents.
	SetupSeconds float64   `json:"setupSeconds"`
	Namespaces   []nsSplit `json:"namespaces"`
	// Steps sums the engine's timed steps by name (seconds).
	Steps map[string]float64 `json:"steps,omitempty"`
}

// nsSplit is one collection's copy: the reader waiting for the source
// cursor, waiting for the budget and an inserter (engine only; raw inserts
// in lock-step), the inserts, the index builds, and when it was done
// (seconds since the child started).
type nsSplit struct {
	NS            string  `json:"ns"`
	ReadSeconds   float64 `json:"readSeconds"`
	QueueSeconds  float64 `json:"queueSeconds"`
	InsertSeconds float64 `json:"insertSeconds"`
	IndexSeconds  float64 `json:"indexSeconds"`
	// FirstBatchesSeconds is the time from the find to the 1000th document.
	FirstBatchesSeconds float64 `json:"firstBatchesSeconds"`
	StartAt             float64 `json:"startAt"`
	DoneAt              float64 `json:"doneAt"`
}

// engineVariant is the engine with some copy options changed.
type engineVariant struct {
	firstBatch, workers, inserters, batch int
	// namedDB includes the benchmark's database by name, as the raw copy
	// knows it: no listDatabases (on FerretDB a walk of every page).
	namedDB bool
	// indexesFirstUpTo is engine.Options.IndexesFirstUpTo (-ixafter: -1,
	// -ixupN: N).
	indexesFirstUpTo int64
}

// parseMethod checks a method name: raw, or engine with optional suffixes
// -firstN (first cursor batch of N documents), -wN (N namespaces at once),
// -iN (N inserters per namespace), -bN (batches of at most N documents), -db (the benchmark's database named in
// an include filter), -ixafter (every collection's indexes after its
// documents), -ixupN (indexes before the documents up to N documents); raw
// with -agg (read with an empty aggregation pipeline) and -ixfirst (indexes
// built before the documents).
func parseMethod(m string) (engineVariant, error) {
	var v engineVariant
	if m == "raw" || m == "raw-ixfirst" || m == "raw-agg" || m == "raw-agg-ixfirst" || m == "engine" {
		return v, nil
	}
	parts := strings.Split(m, "-")
	if parts[0] != "engine" {
		return v, fmt.Errorf("method %q: want raw[-agg][-ixfirst] or engine[-firstN][-wN][-iN][-bN][-db][-ixafter][-ixupN]", m)
	}
	for _, p := range parts[1:] {
		if p == "db" {
			v.namedDB = true
			continue
		}
		if p == "ixafter" {
			v.indexesFirstUpTo = -1
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimPrefix(p, "ixup"), 10, 64); strings.HasPrefix(p, "ixup") {
			if err != nil || n <= 0 {
				return v, fmt.Errorf("method %q: %q needs a positive number", m, p)
			}
			v.indexesFirstUpTo = n
			continue
		}
		var dst *int
		var num string
		switch {
		case strings.HasPrefix(p, "first"):
			dst, num = &v.firstBatch, strings.TrimPrefix(p, "first")
		case strings.HasPrefix(p, "w"):
			dst, num = &v.workers, strings.TrimPrefix(p, "w")
		case strings.HasPrefix(p, "i"):
			dst, num = &v.inserters, strings.TrimPrefix(p, "i")
		case strings.HasPrefix(p, "b"):
			dst, num = &v.batch, strings.TrimPrefix(p, "b")
		default:
			return v, fmt.Errorf("method %q: unknown part %q; want raw[-agg][-ixfirst] or engine[-firstN][-wN][-iN][-bN][-db][-ixafter][-ixupN]", m, p)
		}
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 {
			return v, fmt.Errorf("method %q: %q needs a positive number", m, p)
		}
		*dst = n
	}
	return v, nil
}

// copyChild is the child process: copy with method, print a childResult.
func copyChild(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: %s raw[-agg][-ixfirst]|engine[-firstN][-wN][-iN][-bN][-db][-ixafter][-ixupN] SRC DST", childCommand)
	}
	variant, err := parseMethod(args[0])
	if err != nil {
		return err
	}
	ctx := context.Background()
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	var res childResult
	if strings.HasPrefix(args[0], "raw") {
		res, err = rawCopy(ctx, start, args[1], args[2], strings.Contains(args[0], "ixfirst"), strings.Contains(args[0], "agg"))
	} else {
		res, err = engineCopy(ctx, start, variant, args[1], args[2])
	}
	if err != nil {
		return err
	}
	res.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func engineCopy(ctx context.Context, start time.Time, v engineVariant, src, dst string) (childResult, error) {
	rec := &splitRecorder{start: start, byNS: map[string]*nsSplit{}}
	logger := slog.New(&recordingHandler{Handler: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}), rec: rec})
	opts := engine.Options{Source: mdb.URI(src), Destination: mdb.URI(dst), StopAfterCopy: true}
	opts.Copy.FirstBatch, opts.Copy.Workers, opts.Copy.InsertersPerTask, opts.Copy.BatchDocuments = v.firstBatch, v.workers, v.inserters, v.batch
	opts.IndexesFirstUpTo = v.indexesFirstUpTo
	if v.namedDB {
		opts.Include = []migration.Filter{{Database: "bench"}}
	}
	e, err := engine.New(opts, logger)
	if err != nil {
		return childResult{}, err
	}
	if err := e.Run(ctx); err != nil {
		return childResult{}, err
	}
	return rec.result(), nil
}

// splitRecorder collects the engine's per-collection timings from its log
// records ("collection copied", "collection indexed").
type splitRecorder struct {
	start time.Time
	mu    sync.Mutex
	byNS  map[string]*nsSplit
	steps map[string]float64
}

func (r *splitRecorder) record(rec slog.Record) {
	if rec.Message != "collection copied" && rec.Message != "collection indexed" && rec.Message != "step" {
		return
	}
	attrs := map[string]slog.Value{}
	rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
	if rec.Message == "step" {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.steps == nil {
			r.steps = map[string]float64{}
		}
		r.steps[attrs["step"].String()] += attrs["took"].Duration().Seconds()
		return
	}
	ns := attrs["ns"].String()
	secs := func(k string) float64 {
		if v, ok := attrs[k]; ok && v.Kind() == slog.KindDuration {
			return v.Duration().Seconds()
		}
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.byNS[ns]
	if s == nil {
		s = &nsSplit{NS: ns}
		r.byNS[ns] = s
	}
	at := rec.Time.Sub(r.start).Seconds()
	if rec.Message == "collection copied" {
		s.ReadSeconds, s.QueueSeconds, s.InsertSeconds = secs("reading"), secs("queueing"), secs("inserting")
		s.FirstBatchesSeconds = secs("first_batches")
		s.StartAt = at - secs("took")
	} else {
		s.IndexSeconds = secs("took")
		s.DoneAt = at
	}
}

func (r *splitRecorder) result() childResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := childResult{Steps: r.steps}
	for _, s := range r.byNS {
		res.Namespaces = append(res.Namespaces, *s)
	}
	slices.SortFunc(res.Namespaces, func(a, b nsSplit) int { return strings.Compare(a.NS, b.NS) })
	for i, s := range res.Namespaces {
		if i == 0 || s.StartAt < res.SetupSeconds {
			res.SetupSeconds = s.StartAt
		}
	}
	return res
}

// recordingHandler passes records to rec and, at the handler's own level,
// on to Handler.
type recordingHandler struct {
	slog.Handler
	rec   *splitRecorder
	attrs []slog.Attr
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	if len(h.attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(h.attrs...)
	}
	h.rec.record(r)
	if h.Handler.Enabled(ctx, r.Level) {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{Handler: h.Handler.WithAttrs(as), rec: h.rec, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *recordingHandler) WithGroup(name string) slog.Handler {
	return &recordingHandler{Handler: h.Handler.WithGroup(name), rec: h.rec, attrs: h.attrs}
}

// rawCopy is the simplest correct copy with the driver: per collection one
// worker (4 for the benchmark's 4 collections) scans and inserts unordered
// batches of 1000 in lock-step, then builds the secondary indexes.
func rawCopy(ctx context.Context, start time.Time, srcURI, dstURI string, indexesFirst, agg bool) (childResult, error) {
	var res childResult
	src, err := mongo.Connect(options.Client().ApplyURI(srcURI))
	if err != nil {
		return res, err
	}
	defer src.Disconnect(ctx)
	dst, err := mongo.Connect(options.Client().ApplyURI(dstURI))
	if err != nil {
		return res, err
	}
	defer dst.Disconnect(ctx)
	names, err := src.Database("bench").ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return res, err
	}
	slices.Sort(names)
	res.Namespaces = make([]nsSplit, len(names))
	res.SetupSeconds = time.Since(start).Seconds()
	g, ctx := errgroup.WithContext(ctx)
	for i, name := range names {
		g.Go(func() error {
			s := &res.Namespaces[i]
			s.NS, s.StartAt = "bench."+name, time.Since(start).Seconds()
			var reading, inserting time.Duration
			from, to := src.Database("bench").Collection(name), dst.Database("bench").Collection(name)
			insert := func(batch []bson.Raw) error {
				t := time.Now()
				_, err := to.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
				inserting += time.Since(t)
				return err
			}
			buildIndexes := func() error {
				ixs, err := catalog.ListIndexes(ctx, src, nsOf(name))
				if err != nil {
					return err
				}
				for _, ix := range ixs {
					if err := dst.Database("bench").RunCommand(ctx, bson.D{{Key: "createIndexes", Value: name}, {Key: "indexes", Value: bson.A{ix.Spec}}}).Err(); err != nil {
						return err
					}
				}
				return nil
			}
			if indexesFirst {
				if err := buildIndexes(); err != nil {
					return err
				}
			}
			t := time.Now()
			found, n := t, 0
			var cur *mongo.Cursor
			if agg {
				cur, err = from.Aggregate(ctx, bson.A{}, options.Aggregate().SetBatchSize(1000))
			} else {
				cur, err = from.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
			}
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			batch := make([]bson.Raw, 0, 1000)
			for cur.Next(ctx) {
				reading += time.Since(t)
				if n++; n == 1000 {
					s.FirstBatchesSeconds = time.Since(found).Seconds()
				}
				batch = append(batch, slices.Clone(cur.Current))
				if len(batch) == 1000 {
					if err := insert(batch); err != nil {
						return err
					}
					batch = batch[:0]
				}
				t = time.Now()
			}
			reading += time.Since(t)
			if err := cur.Err(); err != nil {
				return err
			}
			if len(batch) > 0 {
				if err := insert(batch); err != nil {
					return err
				}
			}
			indexing := time.Now()
			if !indexesFirst {
				if err := buildIndexes(); err != nil {
					return err
				}
			}
			s.ReadSeconds, s.InsertSeconds, s.IndexSeconds = reading.Seconds(), inserting.Seconds(), time.Since(indexing).Seconds()
			s.DoneAt = time.Since(start).Seconds()
			return nil
		})
	}
	return res, g.Wait()
}

func nsOf(coll string) migration.Namespace { return migration.Namespace{DB: "bench", Coll: coll} }

func logLevel() slog.Level {
	switch os.Getenv("BENCH_LOG") {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
