package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/apply"
	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// The change-application benchmark (docs/design/apply.md): with the copy
// finished, a workload writes to the source at stepped rates; for each step
// the maximum lag is recorded, for the engine and for a raw replicator that
// applies the same operations (it runs alongside, on the same writes) to
// the destination in the same batch shape. The sustained rate is the highest step whose lag stayed under the
// threshold for the whole window. Then commit downtime after a steady load.

type cdcConfig struct {
	Rates          []float64 `json:"rates"`
	StepSeconds    float64   `json:"stepSeconds"`
	SteadySeconds  float64   `json:"steadySeconds"`
	ThresholdSecs  int64     `json:"lagThresholdSeconds"`
	Writers        int       `json:"writers"`
	DocBytes       int       `json:"docBytes"`
	SeedDocs       int       `json:"seedDocsPerCollection"`
	Oplog          int       `json:"oplogMax"`
	BatchSize      int       `json:"batchSize"`
	Backend        string    `json:"backend"`
	IDs            string    `json:"ids"`
	ShortenedSteps bool      `json:"shortenedSteps"`
}

type cdcStep struct {
	Method       string  `json:"method"`
	TargetRate   float64 `json:"targetOpsPerSecond"`
	AchievedRate float64 `json:"achievedOpsPerSecond"`
	MaxLag       int64   `json:"maxLagSeconds"`
	// ReportedMaxLag is the engine's own lagTimeSeconds (max over the step).
	ReportedMaxLag int64 `json:"reportedMaxLagSeconds,omitempty"`
	// ReportedGap is the largest |reported − end-to-end| of one sample.
	ReportedGap int64   `json:"reportedGapSeconds,omitempty"`
	MeanLag     float64 `json:"meanLagSeconds"`
	Sustained   bool    `json:"sustained"`
}

type cdcResult struct {
	Steps           []cdcStep `json:"steps"`
	EngineSustained float64   `json:"engineSustainedOpsPerSecond"`
	RawSustained    float64   `json:"rawSustainedOpsPerSecond"`
	Ratio           float64   `json:"sustainedRatioEngineToRaw"`
	Commit          struct {
		SteadyRate          float64 `json:"steadyOpsPerSecond"`
		DowntimeSeconds     float64 `json:"downtimeSeconds"`
		VerificationSeconds float64 `json:"verificationSeconds"`
		Repaired            int64   `json:"repaired"`
		Verified            bool    `json:"verified"`
		EventsApplied       int64   `json:"eventsApplied"`
	} `json:"commit"`
}

func cdcBench(args []string) error {
	fs := flag.NewFlagSet("cdc", flag.ContinueOnError)
	var cfg cdcConfig
	rates := fs.String("rates", "40,60,80,100,120,140,160", "workload rates in operations per second, one step each")
	step := fs.Duration("step-duration", time.Minute, "window per rate step (the target is defined over 60s; shorten for a quick run)")
	steady := fs.Duration("steady", 30*time.Second, "steady load before the commit-downtime measurement")
	fs.Int64Var(&cfg.ThresholdSecs, "lag-threshold", 2, "lag in seconds a step must stay under for the whole step")
	fs.IntVar(&cfg.Writers, "writers", 4, "concurrent workload writers")
	fs.IntVar(&cfg.DocBytes, "doc-bytes", 500, "mean document filler size")
	fs.IntVar(&cfg.SeedDocs, "seed-docs", 500, "documents per collection before the copy")
	fs.IntVar(&cfg.Oplog, "oplog", 3_000, "source oplog size in entries (every FerretDB oplog poll scans all of it; 3000 hold ~19 s at 160 ops/s)")
	pg := fs.Bool("postgresql", false, "use FerretDB's PostgreSQL backend")
	fs.StringVar(&cfg.IDs, "ids", "objectid", "the workload's _id type: objectid (MongoDB's default) or int64 (a table scan per update or delete on FerretDB/SQLite)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.IDs != "objectid" && cfg.IDs != "int64" {
		return fmt.Errorf("-ids %q: want objectid or int64", cfg.IDs)
	}
	var err error
	if cfg.Rates, err = positiveList[float64]("-rates", *rates); err != nil {
		return err
	}
	cfg.StepSeconds, cfg.SteadySeconds = step.Seconds(), steady.Seconds()
	cfg.ShortenedSteps = *step < time.Minute
	cfg.BatchSize = 4096 // apply.Options default in ModeInIDs (FerretDB destinations), used by the raw replicator too
	cfg.Backend = string(mongotest.SQLite)
	if *pg {
		cfg.Backend = string(mongotest.PostgreSQL)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := startServers(ctx, "cdc", mongotest.Options{ReplSet: "rs0", Oplog: cfg.Oplog}, mongotest.Backend(cfg.Backend))
	if err != nil {
		return err
	}
	defer srv.Close()
	src, dst, sc, dc := srv.src, srv.dst, srv.sc, srv.dc

	nss := []string{"bench.c0", "bench.c1"}
	fmt.Fprintf(os.Stderr, "seeding %d collections × %d documents…\n", len(nss), cfg.SeedDocs)
	if _, err := generate(ctx, sc, len(nss), 0, cfg.SeedDocs, cfg.DocBytes); err != nil {
		return err
	}

	var res cdcResult
	// Engine: copy, then the rate steps while it applies.
	e, err := engine.New(engine.Options{Source: mdb.URI(src.URI()), Destination: mdb.URI(dst.URI())},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
	if err != nil {
		return err
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(runCtx) }()
	if err := waitUntil(ctx, runErr, 5*time.Minute, func() bool { return e.Progress().Phase == migration.PhaseApplying }); err != nil {
		return fmt.Errorf("wait for change application: %w", err)
	}
	// Start measuring once the copy's backlog is applied.
	if err := waitUntil(ctx, runErr, 5*time.Minute, func() bool { return e.Progress().CanCommit && e.Progress().LagTimeSeconds <= 1 }); err != nil {
		return fmt.Errorf("wait for the engine to catch up after the copy: %w", err)
	}
	// Raw baseline, same servers, same run, same operations at the same
	// moment: a bare oplog poller writing the same batch shape into a
	// database of its own on the destination, alongside the engine, so load
	// from anything else on the machine hits both alike.
	// The raw baseline writes into collections holding the same documents
	// and indexes as the engine's: on FerretDB a delete by $in scans the
	// collection, so an empty one would be an unfair head start.
	if err := cloneForRaw(ctx, dc, nss); err != nil {
		return fmt.Errorf("prepare the raw baseline's collections: %w", err)
	}
	raw := &rawReplicator{src: sc, dst: dc, batch: cfg.BatchSize}
	rawCtx, cancelRaw := context.WithCancel(ctx)
	defer cancelRaw()
	rawErr := make(chan error, 1)
	go func() { rawErr <- raw.run(rawCtx) }()
	if err := waitUntil(ctx, rawErr, time.Minute, func() bool { return raw.started() }); err != nil {
		return fmt.Errorf("raw replicator: %w", err)
	}
	// Lag is measured end to end and alike for both: a marker document on
	// the source is updated every 200 ms; a replicator's lag is the age of
	// the oldest marker write its copy of the document does not show yet.
	marker := newLagMarker(sc, "bench", "lagprobe", "c0", "c1")
	markCtx, stopMarker := context.WithCancel(ctx)
	defer stopMarker()
	markErr := make(chan error, 1)
	go func() { markErr <- marker.run(markCtx) }()
	meters := []*lagProbe{
		{method: "engine", lag: func() int64 { return marker.lag(ctx, dc, "bench") }, errc: runErr, ok: true,
			reported: func() int64 { return e.Progress().LagTimeSeconds }},
		{method: "raw", lag: func() int64 { return marker.lag(ctx, dc, "raw_bench") }, errc: rawErr, ok: true},
	}
	idBase := int64(1_000_000_000_000)
	for _, rate := range cfg.Rates {
		steps, err := runStep(ctx, sc, rate, *step, cfg, nss, idBase, meters)
		idBase += 100_000_000_000
		if err != nil {
			return err
		}
		res.Steps = append(res.Steps, steps...)
		for i, st := range steps {
			if st.Sustained && meters[i].ok {
				if meters[i].method == "engine" {
					res.EngineSustained = rate
				} else {
					res.RawSustained = rate
				}
			} else {
				meters[i].ok = false
			}
		}
		if !meters[0].ok && !meters[1].ok {
			break
		}
		for _, m := range meters {
			if m.alive() {
				// Caught up before the next step.
				if err := waitUntil(ctx, m.errc, 5*time.Minute, func() bool { return m.lag() < cfg.ThresholdSecs }); err != nil {
					return fmt.Errorf("%s drain after %.0f ops/s: %w", m.method, rate, err)
				}
			}
		}
	}
	stopMarker()
	if err := <-markErr; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("lag marker: %w", err)
	}
	cancelRaw()
	if err := <-rawErr; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "raw replicator stopped: %v\n", err)
	}
	// The raw baseline's database is not the source's: drop it before the
	// commit's verification sees it as an extra namespace.
	if err := dc.Database("raw_bench").Drop(ctx); err != nil {
		return fmt.Errorf("drop the raw baseline's database: %w", err)
	}
	engineAlive := !meters[0].dead
	if res.RawSustained > 0 {
		res.Ratio = res.EngineSustained / res.RawSustained
	}

	// Commit downtime after a steady load at the highest sustained rate.
	res.Commit.SteadyRate = max(res.EngineSustained, cfg.Rates[0])
	if !engineAlive {
		cancelRun()
		if err := freshDestination(ctx, dc); err != nil {
			return err
		}
		if e, err = engine.New(engine.Options{Source: mdb.URI(src.URI()), Destination: mdb.URI(dst.URI())},
			slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))); err != nil {
			return err
		}
		runCtx, cancelRun = context.WithCancel(ctx)
		defer cancelRun()
		runErr = make(chan error, 1)
		go func() { runErr <- e.Run(runCtx) }()
		if err := waitUntil(ctx, runErr, 5*time.Minute, func() bool { return e.Progress().Phase == migration.PhaseApplying }); err != nil {
			return fmt.Errorf("wait for change application (second run): %w", err)
		}
	}
	if err := waitUntil(ctx, runErr, 5*time.Minute, func() bool { return e.Progress().CanCommit }); err != nil {
		return fmt.Errorf("wait for canCommit: %w", err)
	}
	fmt.Fprintf(os.Stderr, "steady load at %.0f ops/s for %s, then commit…\n", res.Commit.SteadyRate, *steady)
	wl := mongotest.StartWorkload(ctx, sc, workloadOpts(cfg, nss, res.Commit.SteadyRate, idBase))
	time.Sleep(*steady)
	if _, err := wl.Stop(); err != nil {
		return fmt.Errorf("steady workload: %w", err)
	}
	// Writes are stopped: commit as an operator would, as soon as allowed.
	if err := waitUntil(ctx, runErr, 5*time.Minute, func() bool { return e.Progress().CanCommit }); err != nil {
		return err
	}
	if err := e.Commit(); err != nil {
		return err
	}
	if err := <-runErr; err != nil {
		return fmt.Errorf("engine commit: %w", err)
	}
	rep := e.CommitReport()
	res.Commit.DowntimeSeconds, res.Commit.VerificationSeconds = rep.DowntimeSeconds, rep.VerificationSeconds
	res.Commit.Repaired, res.Commit.Verified, res.Commit.EventsApplied = rep.Repaired, rep.Verified, rep.EventsApplied

	printCDC(os.Stdout, cfg, res)
	return writeBenchJSON("cdc", map[string]any{"config": cfg, "results": res})
}

func workloadOpts(cfg cdcConfig, nss []string, rate float64, idBase int64) mongotest.WorkloadOptions {
	return mongotest.WorkloadOptions{Namespaces: nss, Writers: cfg.Writers, Rate: rate, DocBytes: cfg.DocBytes, Seed: 42, IDBase: idBase,
		ObjectIDs: cfg.IDs == "objectid"}
}

// lagProbe is one replicator under measurement.
type lagProbe struct {
	method   string
	lag      func() int64
	reported func() int64 // the replicator's own lag figure, if it has one
	errc     <-chan error
	ok       bool // sustained every step so far
	dead     bool // stopped with an error (e.g. ErrHistoryLost after falling behind)
}

func (m *lagProbe) alive() bool { return !m.dead }

// runStep writes at rate for d, sampling every live replicator's lag every
// 250 ms; it returns one row per replicator.
func runStep(ctx context.Context, sc *mongo.Client, rate float64, d time.Duration, cfg cdcConfig,
	nss []string, idBase int64, meters []*lagProbe) ([]cdcStep, error) {
	steps := make([]cdcStep, len(meters))
	sums := make([]float64, len(meters))
	for i, m := range meters {
		steps[i] = cdcStep{Method: m.method, TargetRate: rate}
	}
	wl := mongotest.StartWorkload(ctx, sc, workloadOpts(cfg, nss, rate, idBase))
	start := time.Now()
	n := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			_, _ = wl.Stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
		for i, m := range meters {
			if m.dead {
				continue
			}
			select {
			case err := <-m.errc:
				fmt.Fprintf(os.Stderr, "  %s stopped during the %.0f ops/s step: %v\n", m.method, rate, err)
				m.dead = true
				continue
			default:
			}
			l := m.lag()
			steps[i].MaxLag = max(steps[i].MaxLag, l)
			sums[i] += float64(l)
			if m.reported != nil {
				r := m.reported()
				steps[i].ReportedMaxLag = max(steps[i].ReportedMaxLag, r)
				steps[i].ReportedGap = max(steps[i].ReportedGap, r-l, l-r)
			}
		}
		n++
	}
	recs, err := wl.Stop()
	if err != nil {
		return nil, fmt.Errorf("workload at %.0f ops/s: %w", rate, err)
	}
	achieved := float64(len(recs)) / time.Since(start).Seconds()
	for i, m := range meters {
		s := &steps[i]
		s.AchievedRate = achieved
		s.MeanLag = sums[i] / float64(max(n, 1))
		// A step counts only if the source really took the rate (within
		// 10 %) and lag stayed under the threshold for the whole window.
		s.Sustained = !m.dead && s.MaxLag <= cfg.ThresholdSecs && achieved >= 0.9*rate
		fmt.Fprintf(os.Stderr, "  %-6s %6.0f ops/s target, %6.0f achieved: max lag %ds, mean %.1fs\n", m.method, rate, achieved, s.MaxLag, s.MeanLag)
	}
	return steps, nil
}

// waitUntil polls cond every 200 ms; it fails when errc delivers, ctx
// ends or d passes.
func waitUntil(ctx context.Context, errc <-chan error, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		select {
		case err := <-errc:
			if err == nil {
				err = errors.New("stopped")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
	}
	return nil
}

// lagMarker updates a marker document on the source every 200 ms, in
// turn in each of its collections (the workload's and a probe of its own),
// and remembers when each version was acknowledged. A replicator that
// applies one namespace before another (a batch written namespace by
// namespace) shows a marker in the fast one while the slow one still
// waits: the oldest version not shown, over all of them, is the lag of the
// slowest.
type lagMarker struct {
	db    string   // database of the collections, on the source
	colls []string // collections written in turn: version v goes to colls[(v-1) % len]
	src   *mongo.Client

	mu    sync.Mutex // guards the fields below
	seq   int64
	acked map[int64]time.Time
	began map[int64]time.Time // when each version's write was sent (diagnostics)
	shown map[string]int64    // copy's collection → newest version it has shown
}

func newLagMarker(src *mongo.Client, db string, colls ...string) *lagMarker {
	return &lagMarker{db: db, colls: colls, src: src, acked: map[int64]time.Time{}, began: map[int64]time.Time{}, shown: map[string]int64{}}
}

// coll is the collection version v is written to.
func (m *lagMarker) coll(v int64) string { return m.colls[(v-1)%int64(len(m.colls))] }

func (m *lagMarker) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		m.mu.Lock()
		next := m.seq + 1
		m.began[next] = time.Now()
		m.mu.Unlock()
		_, err := m.src.Database(m.db).Collection(m.coll(next)).UpdateOne(ctx, bson.D{{Key: "_id", Value: "marker"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: next}}}}, options.UpdateOne().SetUpsert(true))
		if err != nil {
			return err
		}
		m.mu.Lock()
		m.seq, m.acked[next] = next, time.Now()
		m.mu.Unlock()
	}
}

// lag reads the markers from a replicator's copy (database copyDB of
// dst): the age of the oldest acknowledged version it does not show, over
// all the marker's collections, in whole seconds, as of the moment after
// the reads.
func (m *lagMarker) lag(ctx context.Context, dst *mongo.Client, copyDB string) int64 {
	shown := make([]int64, len(m.colls))
	for i, c := range m.colls {
		var d struct {
			Seq int64 `bson:"seq"`
		}
		// Absent (not created yet, or between a batch's delete and
		// insert) or unreadable: the copy still shows what it showed.
		_ = dst.Database(copyDB).Collection(c).FindOne(ctx, bson.D{{Key: "_id", Value: "marker"}}).Decode(&d)
		shown[i] = d.Seq
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int64(len(m.colls))
	var oldest time.Time
	for i, c := range m.colls {
		key := copyDB + "." + c
		v := max(shown[i], m.shown[key])
		m.shown[key] = v
		// The next version written to c after the one shown.
		next := v + n
		if v == 0 {
			next = int64(i) + 1
		}
		if at, ok := m.acked[next]; ok && next <= m.seq && (oldest.IsZero() || at.Before(oldest)) {
			oldest = at
		}
	}
	if oldest.IsZero() || !oldest.Before(now) {
		return 0
	}
	return int64(now.Sub(oldest).Round(time.Second) / time.Second)
}

// cloneForRaw copies the engine's destination collections (documents and
// indexes) into the raw baseline's database "raw_<db>".
func cloneForRaw(ctx context.Context, dc *mongo.Client, nss []string) error {
	for _, ns := range nss {
		db, coll, _ := strings.Cut(ns, ".")
		from, to := dc.Database(db).Collection(coll), dc.Database("raw_"+db).Collection(coll)
		cur, err := from.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
		if err != nil {
			return err
		}
		batch := make([]any, 0, 1000)
		for cur.Next(ctx) {
			batch = append(batch, bson.Raw(slices.Clone(cur.Current)))
			if len(batch) == cap(batch) || cur.RemainingBatchLength() == 0 {
				if _, err := to.InsertMany(ctx, batch); err != nil {
					cur.Close(ctx)
					return err
				}
				batch = batch[:0]
			}
		}
		if err := cur.Err(); err != nil {
			return err
		}
		cur.Close(ctx)
		ixs, err := catalog.ListIndexes(ctx, dc, migration.Namespace{DB: db, Coll: coll})
		if err != nil {
			return err
		}
		for _, ix := range ixs {
			ref, err := catalog.CreateIndex(ctx, dc, migration.Namespace{DB: "raw_" + db, Coll: coll}, ix.Name, ix.Spec)
			if err != nil {
				return err
			}
			if ref != nil {
				return ref
			}
		}
	}
	return nil
}

// rawReplicator is the baseline: poll the oplog for ts > last (no overlap
// window, no dedupe, no catalog, no checkpoint: an upper bound, not a
// correct replicator on FerretDB), and per poll and namespace write batches
// of up to batch documents the way the engine's ModeInIDs does: one delete
// (per-_id statements or one $in) and one unordered insertMany of the final
// images, into database "raw_<db>", a copy of the engine's collections.
type rawReplicator struct {
	src, dst *mongo.Client
	batch    int

	mu sync.Mutex // guards ok
	ok bool
}

func (r *rawReplicator) started() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok
}

type rawEntry struct {
	Op string         `bson:"op"`
	NS string         `bson:"ns"`
	TS bson.Timestamp `bson:"ts"`
	O  bson.Raw       `bson:"o"`
	O2 bson.Raw       `bson:"o2"`
}

func (r *rawReplicator) run(ctx context.Context) error {
	oplog := r.src.Database("local").Collection("oplog.rs")
	var last bson.Timestamp
	// Start at the newest entry.
	cur, err := oplog.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "ts", Value: 1}}))
	if err != nil {
		return err
	}
	for cur.Next(ctx) {
		if t, i, ok := cur.Current.Lookup("ts").TimestampOK(); ok && migration.CompareTS(bson.Timestamp{T: t, I: i}, last) > 0 {
			last = bson.Timestamp{T: t, I: i}
		}
	}
	cur.Close(ctx)
	r.mu.Lock()
	r.ok = true
	r.mu.Unlock()
	for ctx.Err() == nil {
		cur, err := oplog.Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gt", Value: last}}}}, options.Find().SetBatchSize(5000))
		if err != nil {
			return err
		}
		var entries []rawEntry
		if err := cur.All(ctx, &entries); err != nil {
			return err
		}
		newest := last
		for _, en := range entries {
			if migration.CompareTS(en.TS, newest) > 0 {
				newest = en.TS
			}
		}
		if err := r.apply(ctx, entries); err != nil {
			return err
		}
		last = newest
		if len(entries) < 1000 {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return ctx.Err()
}

// apply writes entries in order, batch by batch: the final image of each
// _id of a batch (nil when deleted), then $in delete + insertMany.
func (r *rawReplicator) apply(ctx context.Context, entries []rawEntry) error {
	type batch struct {
		ids    []bson.RawValue
		images map[string]bson.Raw
		order  []string
	}
	flush := func(ns string, b *batch) error {
		db, coll, _ := strings.Cut(ns, ".")
		c := r.dst.Database("raw_" + db).Collection(coll)
		// The engine's delete (per-_id statements or one $in).
		if err := apply.DeleteIDs(ctx, c, b.ids); err != nil {
			return err
		}
		var docs []any
		for _, k := range b.order {
			if img := b.images[k]; img != nil {
				docs = append(docs, img)
			}
		}
		if len(docs) > 0 {
			if _, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
				return err
			}
		}
		return nil
	}
	batches := map[string]*batch{}
	for _, en := range entries {
		if !strings.HasPrefix(en.NS, "bench.") {
			continue
		}
		var key bson.RawValue
		var img bson.Raw
		switch en.Op {
		case "i":
			key, img = en.O.Lookup("_id"), en.O
		case "u": // FerretDB: $set holds the full post-image
			key = en.O2.Lookup("_id")
			img, _ = en.O.Lookup("$set").DocumentOK()
		case "d":
			key = en.O.Lookup("_id")
		default:
			continue
		}
		b := batches[en.NS]
		if b == nil {
			b = &batch{images: map[string]bson.Raw{}}
			batches[en.NS] = b
		}
		k := string(key.Value)
		if _, seen := b.images[k]; !seen {
			b.ids = append(b.ids, key)
			b.order = append(b.order, k)
		}
		b.images[k] = img
		if len(b.ids) >= r.batch {
			if err := flush(en.NS, b); err != nil {
				return err
			}
			delete(batches, en.NS)
		}
	}
	for ns, b := range batches {
		if err := flush(ns, b); err != nil {
			return err
		}
	}
	return nil
}

func printCDC(w io.Writer, cfg cdcConfig, res cdcResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\ttarget ops/s\tachieved ops/s\tmax lag s\tmean lag s\treported max lag s\treported gap s\tsustained\t")
	for _, s := range res.Steps {
		rep, gap := "-", "-"
		if s.Method == "engine" {
			rep, gap = fmt.Sprint(s.ReportedMaxLag), fmt.Sprint(s.ReportedGap)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%d\t%.1f\t%s\t%s\t%v\t\n", s.Method, s.TargetRate, s.AchievedRate, s.MaxLag, s.MeanLag, rep, gap, s.Sustained)
	}
	tw.Flush()
	fmt.Fprintf(w, "sustained: engine %.0f ops/s, raw %.0f ops/s, engine/raw %.2f (target ≥ 0.8)\n", res.EngineSustained, res.RawSustained, res.Ratio)
	fmt.Fprintf(w, "commit after %.0fs at %.0f ops/s: downtime %.2fs, of which verification %.2fs (target ≤ 5 s + verification); verified %v, repaired %d, events applied %d\n",
		cfg.SteadySeconds, res.Commit.SteadyRate, res.Commit.DowntimeSeconds, res.Commit.VerificationSeconds, res.Commit.Verified, res.Commit.Repaired, res.Commit.EventsApplied)
	fmt.Fprintf(w, "Lag threshold %ds for both. The raw poller (ts > last, no overlap window, no de-duplication, no catalog comparison, no checkpoint: it can miss entries FerretDB makes visible out of order) runs alongside the engine on the same writes.\n", cfg.ThresholdSecs)
	fmt.Fprintln(w, "Lag is measured end to end for both: a marker document is updated every 200 ms (5 extra writes/s), in turn in bench.lagprobe and in each workload collection; lag = age of the oldest acknowledged marker write not yet visible in the replicator's copy, over all of them. 'reported' is the engine's own lagTimeSeconds (read 4 times a second); 'reported gap' the largest difference between the two in one sample. Reported must track the end-to-end maximum per step within 1 s.")
	fmt.Fprintf(w, "A step is sustained when lag stayed ≤ the threshold for the whole %.0fs window and the source took ≥ 90%% of the target rate.", cfg.StepSeconds)
	if cfg.ShortenedSteps {
		fmt.Fprint(w, " Steps were SHORTENED below the 60 s the target is defined over.")
	}
	fmt.Fprintln(w)
}
