package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

type downtimeConfig struct {
	Docs          []int   `json:"documents"`
	Oplogs        []int   `json:"oplogEntries"`
	Rate          float64 `json:"opsPerSecond"`
	SteadySeconds float64 `json:"steadySeconds"`
	Writers       int     `json:"writers"`
	DocBytes      int     `json:"docBytes"`
	Backend       string  `json:"backend"`
	PassWait      float64 `json:"passWaitSeconds"`
	passWait      time.Duration
	markerWalls   bool
}

// downtimeParts are the commit report's parts of the downtime; a part the
// report does not itemise is nil.
type downtimeParts struct {
	Downtime     *float64 `json:"downtimeSeconds"`
	CommitPoint  *float64 `json:"commitPointSeconds"`
	Drain        *float64 `json:"drainSeconds"`
	IndexRestore *float64 `json:"indexRestoreSeconds"`
	Verification *float64 `json:"verificationSeconds"`
	Repaired     int64    `json:"repaired"`
	Verified     bool     `json:"verified"`
	// Rechecked counts the documents compared at commit; InFull the
	// namespaces compared in full there (no background pass held).
	Rechecked int64 `json:"documentsRechecked"`
	Coverage  *struct {
		InFull []struct {
			Namespace string `json:"namespace"`
			Reason    string `json:"reason"`
		} `json:"comparedInFull"`
	} `json:"coverage"`
}

type downtimeCase struct {
	Docs   int `json:"documents"`
	Oplog  int `json:"oplogEntries"`
	Report struct {
		downtimeParts
	} `json:"report"`
	// Lag during the steady writes: the end-to-end maximum (marker) and
	// the engine's own maximum lagTimeSeconds.
	MaxLag         int64 `json:"maxLagSeconds"`
	ReportedMaxLag int64 `json:"reportedMaxLagSeconds"`
	// Achieved is the write rate the source took.
	Achieved float64 `json:"achievedOpsPerSecond"`
	// Steps are the steady writes second by second: the largest
	// end-to-end and reported lag sampled in each.
	Steps []lagStep `json:"lagSteps"`
	// PassesBeforeWrites counts the background passes finished before
	// the steady writes began (2 = both collections).
	PassesBeforeWrites int `json:"passesBeforeWrites"`
}

// downtimeBench commits the same workload against each data size × oplog
// size and tables the downtime and its parts.
func downtimeBench(args []string) error {
	fs := flag.NewFlagSet("downtime", flag.ContinueOnError)
	var cfg downtimeConfig
	docs := fs.String("docs", "20000,200000", "data sizes (documents, over 2 collections)")
	oplogs := fs.String("oplogs", "3000,30000", "source oplog sizes (entries; the oplog is filled to its size before the copy)")
	fs.Float64Var(&cfg.Rate, "rate", 50, "write rate during the steady phase (operations per second)")
	steady := fs.Duration("steady", 20*time.Second, "steady writes before the commit")
	fs.IntVar(&cfg.Writers, "writers", 2, "concurrent workload writers")
	fs.IntVar(&cfg.DocBytes, "doc-bytes", 500, "mean document filler size")
	pg := fs.Bool("postgresql", false, "use FerretDB's PostgreSQL backend")
	fs.DurationVar(&cfg.passWait, "pass-wait", 5*time.Minute, "longest wait for the background verification passes before the steady writes")
	fs.BoolVar(&cfg.markerWalls, "marker-walls", false, "print, for each marker write, where its oplog entry's wall time lies between the write's send and its acknowledgement (stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Docs, err = positiveList[int]("-docs", *docs); err != nil {
		return err
	}
	if cfg.Oplogs, err = positiveList[int]("-oplogs", *oplogs); err != nil {
		return err
	}
	if cfg.Rate <= 0 || *steady <= 0 {
		return fmt.Errorf("-rate %v and -steady %v: want both positive", cfg.Rate, *steady)
	}
	cfg.SteadySeconds = steady.Seconds()
	cfg.PassWait = cfg.passWait.Seconds()
	cfg.Backend = string(mongotest.SQLite)
	if *pg {
		cfg.Backend = string(mongotest.PostgreSQL)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cases []downtimeCase
	for _, n := range cfg.Docs {
		for _, o := range cfg.Oplogs {
			fmt.Fprintf(os.Stderr, "case: %d documents, oplog of %d entries…\n", n, o)
			c, err := downtimeRun(ctx, cfg, n, o)
			if err != nil {
				return fmt.Errorf("%d documents, oplog %d: %w", n, o, err)
			}
			cases = append(cases, c)
		}
	}
	printDowntime(os.Stdout, cfg, cases)
	return writeBenchJSON("downtime", map[string]any{"config": cfg, "cases": cases, "ratio": downtimeRatio(cases)})
}

// downtimeRun is one case on fresh servers: seed, fill the oplog, copy,
// wait (at most -pass-wait) for the background verification passes,
// steady writes, stop them, commit.
func downtimeRun(ctx context.Context, cfg downtimeConfig, docs, oplog int) (res downtimeCase, err error) {
	res.Docs, res.Oplog = docs, oplog
	srv, err := startServers(ctx, "downtime", mongotest.Options{ReplSet: "rs0", Oplog: oplog}, mongotest.Backend(cfg.Backend))
	if err != nil {
		return res, err
	}
	defer srv.Close()
	nss := []string{"bench.c0", "bench.c1"}
	if _, err := generate(ctx, srv.sc, len(nss), 0, (docs+1)/2, cfg.DocBytes); err != nil {
		return res, err
	}
	// The oplog holds its full size when the commit comes: pad it with
	// writes to a database dropped before the copy.
	if pad := oplog - docs; pad > 0 {
		pc := srv.sc.Database("oplogpad").Collection("p")
		for i := 0; i < pad; i += 1000 {
			batch := make([]any, 0, 1000)
			for j := i; j < min(pad, i+1000); j++ {
				batch = append(batch, bson.D{{Key: "_id", Value: j}, {Key: "pad", Value: strings.Repeat("p", cfg.DocBytes)}})
			}
			if _, err := pc.InsertMany(ctx, batch); err != nil {
				return res, fmt.Errorf("pad the oplog: %w", err)
			}
		}
		if err := srv.sc.Database("oplogpad").Drop(ctx); err != nil {
			return res, err
		}
	}

	e, err := engine.New(engine.Options{Source: mdb.URI(srv.src.URI()), Destination: mdb.URI(srv.dst.URI())},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
	if err != nil {
		return res, err
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(runCtx) }()
	if err := waitUntil(ctx, runErr, 30*time.Minute, func() bool { return e.Progress().Phase == migration.PhaseApplying }); err != nil {
		return res, fmt.Errorf("wait for change application: %w", err)
	}
	if err := waitUntil(ctx, runErr, 10*time.Minute, func() bool { return e.Progress().CanCommit }); err != nil {
		return res, fmt.Errorf("wait for canCommit after the copy: %w", err)
	}
	// The background verifier compares both collections once before the
	// steady writes begin, as it would during any sync longer than one
	// pass: the commit then compares only what changed since.
	// It pauses while the lag is at or above 4 s, which on FerretDB a slow
	// oplog poll alone can hold it at (capture.md): after passWait the
	// case goes on, and the commit compares in full what no pass covered.
	for waited := time.Now(); time.Since(waited) < cfg.passWait; {
		if st, _ := e.BackgroundVerification(); st.Passes >= len(nss) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case err := <-runErr:
			return res, fmt.Errorf("engine stopped before the background passes: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	st, _ := e.BackgroundVerification()
	res.PassesBeforeWrites = st.Passes

	// Steady writes, lag measured end to end with a marker (as bench cdc).
	marker := newLagMarker(srv.sc, "bench", "lagprobe", "c0", "c1")
	markCtx, stopMarker := context.WithCancel(ctx)
	defer stopMarker()
	markErr := make(chan error, 1)
	go func() { markErr <- marker.run(markCtx) }()
	wl := mongotest.StartWorkload(ctx, srv.sc, mongotest.WorkloadOptions{Namespaces: nss, Writers: cfg.Writers, Rate: cfg.Rate,
		DocBytes: cfg.DocBytes, Seed: 7, IDBase: 1_000_000_000_000, ObjectIDs: true})
	start := time.Now()
	for time.Since(start) < time.Duration(cfg.SteadySeconds*float64(time.Second)) {
		select {
		case <-ctx.Done():
			_, _ = wl.Stop()
			return res, ctx.Err()
		case err := <-runErr:
			_, _ = wl.Stop()
			return res, fmt.Errorf("engine stopped during the steady writes: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
		// Both at one moment: the marker's reads first, then the engine's
		// figure (its snapshot is taken when Progress starts).
		l := marker.lag(ctx, srv.dc, "bench")
		at := time.Now()
		r := e.Progress().LagTimeSeconds
		res.MaxLag, res.ReportedMaxLag = max(res.MaxLag, l), max(res.ReportedMaxLag, r)
		sec := int(at.Sub(start) / time.Second)
		for len(res.Steps) <= sec {
			res.Steps = append(res.Steps, lagStep{Second: len(res.Steps)})
		}
		st := &res.Steps[sec]
		st.EndToEnd, st.Reported, st.Samples = max(st.EndToEnd, l), max(st.Reported, r), st.Samples+1
	}
	recs, err := wl.Stop()
	if err != nil {
		return res, fmt.Errorf("steady workload: %w", err)
	}
	if cfg.markerWalls {
		markerWalls(ctx, srv.sc, marker)
	}
	res.Achieved = float64(len(recs)) / time.Since(start).Seconds()
	stopMarker()
	if err := <-markErr; err != nil && !errors.Is(err, context.Canceled) {
		return res, fmt.Errorf("lag marker: %w", err)
	}

	// Writes are stopped: commit as an operator would, as soon as allowed.
	if err := waitUntil(ctx, runErr, 5*time.Minute, func() bool { return e.Progress().CanCommit }); err != nil {
		return res, err
	}
	if err := e.Commit(); err != nil {
		return res, err
	}
	if err := <-runErr; err != nil {
		return res, fmt.Errorf("engine commit: %w", err)
	}
	// The report's parts by their JSON names, so parts it does not itemise
	// show as missing rather than zero.
	b, err := json.Marshal(e.CommitReport())
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(b, &res.Report.downtimeParts); err != nil {
		return res, err
	}
	fmt.Fprintf(os.Stderr, "  downtime %s, lag max %ds (reported %ds)\n", fmtSec(res.Report.Downtime), res.MaxLag, res.ReportedMaxLag)
	return res, nil
}

// lagStep is one second of steady writes: the largest end-to-end (marker)
// and reported (lagTimeSeconds) lag sampled in it, every 250 ms.
type lagStep struct {
	Second   int   `json:"second"`
	Samples  int   `json:"samples"` // 0: no sample ended in this second (slow reads)
	EndToEnd int64 `json:"endToEndSeconds"`
	Reported int64 `json:"reportedSeconds"`
}

func fmtSec(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 2, 64)
}

// downtimeRatio is the largest case's downtime over the smallest's.
func downtimeRatio(cases []downtimeCase) float64 {
	lo, hi := 0.0, 0.0
	for _, c := range cases {
		if c.Report.Downtime == nil {
			continue
		}
		d := *c.Report.Downtime
		if lo == 0 || d < lo {
			lo = d
		}
		hi = max(hi, d)
	}
	if lo == 0 {
		return 0
	}
	return hi / lo
}

func printDowntime(w io.Writer, cfg downtimeConfig, cases []downtimeCase) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "documents\toplog\tdowntime s\tcommit point s\tdrain s\tindex restore s\tverification s\trechecked\tin full\trepaired\tverified\tpasses before writes\tmax lag s\treported max lag s\tachieved ops/s\t")
	for _, c := range cases {
		r := c.Report
		inFull := 0
		if r.Coverage != nil {
			inFull = len(r.Coverage.InFull)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%v\t%d\t%d\t%d\t%.0f\t\n", c.Docs, c.Oplog, fmtSec(r.Downtime), fmtSec(r.CommitPoint),
			fmtSec(r.Drain), fmtSec(r.IndexRestore), fmtSec(r.Verification), r.Rechecked, inFull, r.Repaired, r.Verified, c.PassesBeforeWrites, c.MaxLag, c.ReportedMaxLag, c.Achieved)
	}
	tw.Flush()
	// Lag second by second: reported must stay within 1 s of end to end.
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "documents\toplog\tsecond\tend-to-end lag s\treported lag s\tgap s\t")
	for _, c := range cases {
		for _, st := range c.Steps {
			if st.Samples == 0 {
				continue
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t\n", c.Docs, c.Oplog, st.Second, st.EndToEnd, st.Reported, st.Reported-st.EndToEnd)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "largest/smallest downtime: %.2f (target ≤ 1.3); target downtime ≤ 5 s in every case; lag must not grow from the smallest oplog to the largest.\n", downtimeRatio(cases))
	fmt.Fprintf(w, "Each case: fresh FerretDB (%s) servers, %d-byte documents over 2 collections, the oplog filled to its size, copy, the background verification passes, %.0f s of writes at %.0f ops/s (%d writers) with a marker updated every 200 ms, in turn in bench.lagprobe, bench.c0 and bench.c1, for the end-to-end lag (the oldest marker write not yet visible on the destination); reported = the engine's lagTimeSeconds, sampled at the same moment every 250 ms, writes stopped, commit (mode continuous). 'rechecked': documents compared at commit; 'in full': namespaces compared in full at commit (no background pass held). '-' = a part the commit report does not itemise.\n",
		cfg.Backend, cfg.DocBytes, cfg.SteadySeconds, cfg.Rate, cfg.Writers)
}

// markerWalls prints, for each marker write, where its oplog entry's wall
// time lies between the write's send and its acknowledgement.
func markerWalls(ctx context.Context, sc *mongo.Client, m *lagMarker) {
	cur, err := sc.Database("local").Collection("oplog.rs").Find(ctx, bson.D{{Key: "o2._id", Value: "marker"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "marker walls:", err)
		return
	}
	defer cur.Close(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	for cur.Next(ctx) {
		var e struct {
			Wall time.Time `bson:"wall"`
			O    bson.Raw  `bson:"o"`
		}
		if cur.Decode(&e) != nil {
			continue
		}
		var seq int64
		if v, err := e.O.LookupErr("$set", "seq"); err == nil {
			seq, _ = v.AsInt64OK()
		} else if v, err := e.O.LookupErr("seq"); err == nil {
			seq, _ = v.AsInt64OK()
		}
		b, a := m.began[seq], m.acked[seq]
		if b.IsZero() || a.IsZero() {
			continue
		}
		fmt.Fprintf(os.Stderr, "marker %d: wall-sent %v ack-wall %v\n", seq, e.Wall.Sub(b).Round(time.Millisecond), a.Sub(e.Wall).Round(time.Millisecond))
	}
}
