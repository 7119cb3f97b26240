package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

const childCommand = "copy-child"

type copyConfig struct {
	Collections int    `json:"collections"`
	Docs        []int  `json:"docsPerCollection"`
	DocBytes    int    `json:"docBytes"`
	Runs        int    `json:"runs"`
	Backend     string `json:"backend"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1/5/15-minute averages.
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

type copyRow struct {
	DocsPerCollection int       `json:"docsPerCollection"`
	Method            string    `json:"method"`
	Documents         int64     `json:"documents"`
	Bytes             int64     `json:"bytes"`
	Seconds           float64   `json:"medianSeconds"`
	DocsPerSec        float64   `json:"docsPerSecond"`
	MBPerSec          float64   `json:"mbPerSecond"`
	CPUSecondsPerGB   float64   `json:"cpuSecondsPerGB"`
	PeakRSSMB         float64   `json:"peakRSSMB"`
	RatioToRaw        float64   `json:"ratioToRaw,omitempty"`
	AllSeconds        []float64 `json:"allSeconds"`
}

func copyBench(args []string) error {
	fs := flag.NewFlagSet("copy", flag.ContinueOnError)
	cfg := copyConfig{}
	sizes := fs.String("docs", "25000,50000", "documents per collection, one dataset size per value")
	fs.IntVar(&cfg.Collections, "collections", 4, "collections")
	fs.IntVar(&cfg.DocBytes, "doc-bytes", 1000, "approximate document size")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs per method (the median is reported)")
	pg := fs.Bool("postgresql", false, "use FerretDB's PostgreSQL backend")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*sizes, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			return fmt.Errorf("-docs %q: want positive numbers", *sizes)
		}
		cfg.Docs = append(cfg.Docs, n)
	}
	slices.Sort(cfg.Docs)
	cfg.Backend = string(mongotest.SQLite)
	if *pg {
		cfg.Backend = string(mongotest.PostgreSQL)
	}

	// Stop the servers on Ctrl-C too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := startServers(ctx, "copy", mongotest.Options{ReplSet: "rs0", Oplog: 50_000}, mongotest.Backend(cfg.Backend))
	if err != nil {
		return err
	}
	defer srv.Close()
	src, dst, sc, dc := srv.src, srv.dst, srv.sc, srv.dc

	cfg.LoadBefore = loadAverage()
	var rows []copyRow
	have := 0
	var docs, bytes int64
	for _, n := range cfg.Docs {
		fmt.Fprintf(os.Stderr, "generating %d collections × %d documents of ~%d bytes…\n", cfg.Collections, n, cfg.DocBytes)
		b, err := generate(ctx, sc, cfg.Collections, have, n, cfg.DocBytes)
		if err != nil {
			return err
		}
		docs, bytes, have = int64(cfg.Collections*n), bytes+b, n
		// Raw and engine runs alternate, and which one goes first alternates
		// too (raw-engine, engine-raw, …), so load from anything else on the
		// machine — and a trend in it — hits both alike.
		methods := []string{"raw", "engine"}
		byMethod := map[string]*copyRow{}
		cpu := map[string][]float64{}
		for _, m := range methods {
			byMethod[m] = &copyRow{DocsPerCollection: n, Method: m, Documents: docs, Bytes: bytes}
		}
		for run := range cfg.Runs {
			order := slices.Clone(methods)
			if run%2 == 1 {
				slices.Reverse(order)
			}
			for _, method := range order {
				row := byMethod[method]
				if err := freshDestination(ctx, dc); err != nil {
					return err
				}
				res, err := runChild(ctx, method, src.URI(), dst.URI())
				if err != nil {
					return fmt.Errorf("%s run %d: %w", method, run+1, err)
				}
				if err := checkCount(ctx, dc, cfg.Collections, docs); err != nil {
					return fmt.Errorf("%s run %d: %w", method, run+1, err)
				}
				fmt.Fprintf(os.Stderr, "  %-6s run %d: %.2fs, cpu %.2fs, rss %.0f MB (load %s)\n", method, run+1, res.Seconds, res.CPUSeconds, res.PeakRSSMB, loadAverage())
				row.AllSeconds = append(row.AllSeconds, res.Seconds)
				cpu[method] = append(cpu[method], res.CPUSeconds)
				row.PeakRSSMB = max(row.PeakRSSMB, res.PeakRSSMB)
			}
		}
		for _, m := range methods {
			row := byMethod[m]
			row.Seconds = median(row.AllSeconds)
			row.DocsPerSec = float64(docs) / row.Seconds
			row.MBPerSec = float64(bytes) / 1e6 / row.Seconds
			row.CPUSecondsPerGB = median(cpu[m]) / (float64(bytes) / 1e9)
			if m == "engine" {
				row.RatioToRaw = row.DocsPerSec / byMethod["raw"].DocsPerSec
			}
			rows = append(rows, *row)
		}
	}
	cfg.LoadAfter = loadAverage()
	printTable(os.Stdout, rows)
	fmt.Printf("Load average (1/5/15 min) on %d CPUs: %s before, %s after.\n", runtime.NumCPU(), cfg.LoadBefore, cfg.LoadAfter)
	return writeJSON(cfg, rows)
}

// loadAverage is the machine's 1/5/15-minute load average ("" where unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func printTable(w io.Writer, rows []copyRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "docs/coll\tmethod\tdocs\tMB\tmedian s\tdocs/s\tMB/s\tengine/raw\tCPU s/GB\tpeak RSS MB\t")
	for _, r := range rows {
		ratio := ""
		if r.RatioToRaw > 0 {
			ratio = fmt.Sprintf("%.3f", r.RatioToRaw)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f\t%.2f\t%.0f\t%.2f\t%s\t%.1f\t%.0f\t\n", r.DocsPerCollection, r.Method, r.Documents,
			float64(r.Bytes)/1e6, r.Seconds, r.DocsPerSec, r.MBPerSec, ratio, r.CPUSecondsPerGB, r.PeakRSSMB)
	}
	tw.Flush()
	fmt.Fprintln(w, "Both methods run in a child process of their own (CPU = user+sys and peak RSS = ru_maxrss of that process); servers are separate processes.")
}

func writeJSON(cfg copyConfig, rows []copyRow) error {
	out := filepath.Join("bench", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(out, "copy-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	b, err := json.MarshalIndent(map[string]any{"config": cfg, "results": rows}, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return os.WriteFile(path, b, 0o644)
}

// generate adds documents [from, to) to each collection (mixed shapes, ~size
// bytes, _id first) and two secondary indexes, returning the bytes added.
func generate(ctx context.Context, c *mongo.Client, colls, from, to, size int) (int64, error) {
	var total int64
	for ci := range colls {
		coll := c.Database("bench").Collection(fmt.Sprintf("c%d", ci))
		rng := rand.New(rand.NewPCG(uint64(ci), uint64(from)))
		batch := make([]any, 0, 1000)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			_, err := coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
			batch = batch[:0]
			return err
		}
		for i := from; i < to; i++ {
			d := benchDoc(rng, i, size)
			b, err := bson.Marshal(d)
			if err != nil {
				return 0, err
			}
			total += int64(len(b))
			batch = append(batch, bson.Raw(b))
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return 0, fmt.Errorf("generate %s: %w", coll.Name(), err)
				}
			}
		}
		if err := flush(); err != nil {
			return 0, fmt.Errorf("generate %s: %w", coll.Name(), err)
		}
		if from > 0 {
			continue // indexes exist from the smaller dataset
		}
		_, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
			{Keys: bson.D{{Key: "user", Value: 1}}},
			{Keys: bson.D{{Key: "kind", Value: 1}, {Key: "at", Value: -1}}},
		})
		if err != nil {
			return 0, fmt.Errorf("index %s: %w", coll.Name(), err)
		}
	}
	return total, nil
}

func benchDoc(rng *rand.Rand, i, size int) bson.D {
	d := bson.D{
		{Key: "_id", Value: int64(i)},
		{Key: "user", Value: fmt.Sprintf("user-%06d", rng.IntN(100000))},
		{Key: "kind", Value: []string{"order", "event", "profile"}[i%3]},
		{Key: "at", Value: bson.DateTime(1_700_000_000_000 + int64(i)*1000)},
	}
	switch i % 3 {
	case 0:
		d = append(d, bson.E{Key: "items", Value: bson.A{
			bson.D{{Key: "sku", Value: rng.IntN(1000)}, {Key: "qty", Value: int32(rng.IntN(9) + 1)}, {Key: "price", Value: rng.Float64() * 100}},
			bson.D{{Key: "sku", Value: rng.IntN(1000)}, {Key: "qty", Value: int32(1)}, {Key: "price", Value: 9.99}},
		}})
	case 1:
		d = append(d, bson.E{Key: "payload", Value: bson.D{{Key: "ok", Value: rng.IntN(2) == 0}, {Key: "n", Value: int64(rng.Uint32())}, {Key: "tags", Value: bson.A{"a", "b", "c"}}}})
	case 2:
		d = append(d, bson.E{Key: "profile", Value: bson.D{{Key: "name", Value: "Name Surname"}, {Key: "age", Value: int32(rng.IntN(90))}, {Key: "oid", Value: bson.NewObjectID()}}})
	}
	b, _ := bson.Marshal(d)
	if pad := size - len(b) - 10; pad > 0 {
		filler := make([]byte, pad)
		for j := range filler {
			filler[j] = 'a' + byte(rng.IntN(26))
		}
		d = append(d, bson.E{Key: "text", Value: string(filler)})
	}
	return d
}

func freshDestination(ctx context.Context, c *mongo.Client) error {
	for _, db := range []string{"bench", catalog.DefaultMetadataDB} {
		if err := c.Database(db).Drop(ctx); err != nil {
			return fmt.Errorf("clear destination %s: %w", db, err)
		}
	}
	return nil
}

func checkCount(ctx context.Context, c *mongo.Client, colls int, want int64) error {
	var got int64
	for ci := range colls {
		n, err := c.Database("bench").Collection(fmt.Sprintf("c%d", ci)).CountDocuments(ctx, bson.D{})
		if err != nil {
			return err
		}
		got += n
	}
	if got != want {
		return fmt.Errorf("destination holds %d documents, want %d", got, want)
	}
	return nil
}

type childResult struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpuSeconds"`
	PeakRSSMB  float64 `json:"peakRSSMB"`
}

// runChild runs one copy in a process of its own so its CPU time and peak
// RSS are its alone.
func runChild(ctx context.Context, method, src, dst string) (childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return childResult{}, err
	}
	cmd := exec.CommandContext(ctx, exe, childCommand, method, src, dst)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return childResult{}, err
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("child output %q: %w", out, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	res.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	res.PeakRSSMB = float64(ru.Maxrss) / 1024 // KiB on Linux
	return res, nil
}

// copyChild is the child process: copy with method, print the elapsed time.
func copyChild(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: %s raw|engine SRC DST", childCommand)
	}
	ctx := context.Background()
	if prefix := os.Getenv("BENCH_CPUPROFILE"); prefix != "" {
		f, err := os.Create(fmt.Sprintf("%s-%s-%d.pprof", prefix, args[0], os.Getpid()))
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
	var err error
	switch args[0] {
	case "raw":
		err = rawCopy(ctx, args[1], args[2])
	case "engine":
		var e *engine.Engine
		e, err = engine.New(engine.Options{Source: mdb.URI(args[1]), Destination: mdb.URI(args[2]), StopAfterCopy: true}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
		if err == nil {
			err = e.Run(ctx)
		}
	default:
		err = fmt.Errorf("unknown method %q", args[0])
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(childResult{Seconds: time.Since(start).Seconds()})
}

// rawCopy is the simplest correct copy with the driver: per collection one
// worker scans and inserts unordered batches of 1000, then builds the
// secondary indexes.
func rawCopy(ctx context.Context, srcURI, dstURI string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	src, err := mongo.Connect(options.Client().ApplyURI(srcURI))
	if err != nil {
		return err
	}
	defer src.Disconnect(ctx)
	dst, err := mongo.Connect(options.Client().ApplyURI(dstURI))
	if err != nil {
		return err
	}
	defer dst.Disconnect(ctx)
	names, err := src.Database("bench").ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, name := range names {
		g.Go(func() error {
			began := time.Now()
			from, to := src.Database("bench").Collection(name), dst.Database("bench").Collection(name)
			cur, err := from.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			batch := make([]bson.Raw, 0, 1000)
			for cur.Next(ctx) {
				batch = append(batch, slices.Clone(cur.Current))
				if len(batch) == 1000 {
					if _, err := to.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
						return err
					}
					batch = batch[:0]
				}
			}
			if err := cur.Err(); err != nil {
				return err
			}
			if len(batch) > 0 {
				if _, err := to.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
					return err
				}
			}
			copied := time.Now()
			ixs, err := catalog.ListIndexes(ctx, src, nsOf(name))
			if err != nil {
				return err
			}
			for _, ix := range ixs {
				if err := dst.Database("bench").RunCommand(ctx, bson.D{{Key: "createIndexes", Value: name}, {Key: "indexes", Value: bson.A{ix.Spec}}}).Err(); err != nil {
					return err
				}
			}
			logger.Info("raw collection done", "ns", "bench."+name, "copy", copied.Sub(began).Round(time.Millisecond), "indexes", time.Since(copied).Round(time.Millisecond))
			return nil
		})
	}
	return g.Wait()
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
