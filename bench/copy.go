package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

const childCommand = "copy-child"

type copyConfig struct {
	Collections int      `json:"collections"`
	Docs        []int    `json:"docsPerCollection"`
	DocBytes    int      `json:"docBytes"`
	Runs        int      `json:"rounds"`
	Methods     []string `json:"methods"`
	Backend     string   `json:"backend"`
	CPUs        int      `json:"cpus"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1/5/15-minute averages.
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

// procUsage is one process's CPU seconds (user+sys) and peak RSS during a run.
type procUsage struct {
	CPUSeconds float64 `json:"cpuSeconds"`
	PeakRSSMB  float64 `json:"peakRSSMB"`
}

// copyRun is one copy by one method in one round.
type copyRun struct {
	Round   int         `json:"round"`
	Method  string      `json:"method"`
	Seconds float64     `json:"seconds"`
	Child   childResult `json:"child"`
	Copier  procUsage   `json:"copier"` // the child process (engine or raw)
	Source  procUsage   `json:"source"`
	Dest    procUsage   `json:"destination"`
	Digest  string      `json:"digest"` // of the destination, equal to the source's
}

// copySize is every run at one dataset size.
type copySize struct {
	DocsPerCollection int       `json:"docsPerCollection"`
	Documents         int64     `json:"documents"`
	Bytes             int64     `json:"bytes"`
	SourceDigest      string    `json:"sourceDigest"`
	Runs              []copyRun `json:"runs"`
}

func copyBench(args []string) error {
	fs := flag.NewFlagSet("copy", flag.ContinueOnError)
	cfg := copyConfig{CPUs: runtime.NumCPU()}
	sizes := fs.String("docs", "10000,100000", "documents per collection, one dataset size per value (the defaults, 40,000 and 400,000 documents, take about 40 minutes with 3 rounds on 2 cores)")
	methods := fs.String("methods", "raw,engine", "methods to compare: raw[-agg][-ixfirst] (the raw copy reading with an empty aggregation pipeline, building indexes before the documents), engine[-firstN][-wN][-iN][-bN][-db][-ixafter][-ixupN] (the engine with a first cursor batch of N documents, N namespaces at once, N inserters per namespace, batches of at most N documents, the database named in an include filter, every collection's indexes after its documents, indexes before the documents up to N documents)")
	fs.IntVar(&cfg.Collections, "collections", 4, "collections")
	fs.IntVar(&cfg.DocBytes, "doc-bytes", 1200, "approximate document size")
	fs.IntVar(&cfg.Runs, "runs", 3, "interleaved rounds (each runs every method once; medians are reported)")
	pg := fs.Bool("postgresql", false, "use FerretDB's PostgreSQL backend")
	profile := fs.String("profile", "", "directory: CPU-profile the first round of the largest size (the copier process, and both servers for -profile-seconds through their debug handler)")
	profileSecs := fs.Int("profile-seconds", 10, "seconds of server CPU profile from the start of a profiled run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Docs, err = positiveList[int]("-docs", *sizes); err != nil {
		return err
	}
	slices.Sort(cfg.Docs)
	for _, m := range strings.Split(*methods, ",") {
		m = strings.TrimSpace(m)
		if _, err := parseMethod(m); err != nil {
			return err
		}
		cfg.Methods = append(cfg.Methods, m)
	}
	if !slices.Contains(cfg.Methods, "raw") {
		return fmt.Errorf("-methods %q: raw is the baseline and must be one of them", *methods)
	}
	if cfg.Runs <= 0 {
		return fmt.Errorf("-runs %d: want at least 1", cfg.Runs)
	}
	cfg.Backend = string(mongotest.SQLite)
	if *pg {
		cfg.Backend = string(mongotest.PostgreSQL)
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			return err
		}
	}

	// Stop the servers on Ctrl-C too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := startCopyServers(ctx, mongotest.Backend(cfg.Backend), *profile != "")
	if err != nil {
		return err
	}
	defer srv.Close()
	src, dst, sc, dc := srv.src, srv.dst, srv.sc, srv.dc

	cfg.LoadBefore = loadAverage()
	var results []copySize
	have := 0
	var bytes int64
	for si, n := range cfg.Docs {
		fmt.Fprintf(os.Stderr, "generating %d collections × %d documents of ~%d bytes…\n", cfg.Collections, n, cfg.DocBytes)
		if si > 0 { // settleOplog turned the cleanup off for the last size's copies
			if err := src.RestartTrimmingEvery(ctx, 2*time.Second); err != nil {
				return err
			}
		}
		b, err := generate(ctx, sc, cfg.Collections, have, n, cfg.DocBytes)
		if err != nil {
			return err
		}
		bytes, have = bytes+b, n
		if err := settleOplog(ctx, src, sc); err != nil {
			return err
		}
		size := copySize{DocsPerCollection: n, Documents: int64(cfg.Collections * n), Bytes: bytes}
		if size.SourceDigest, err = digest(ctx, sc); err != nil {
			return fmt.Errorf("source digest: %w", err)
		}
		// One copy that is not counted first: the first copy after the
		// documents were generated ran up to a third slower than the next
		// one of the same method, which favoured whichever method came
		// second in round 1.
		if err := freshDestination(ctx, dc); err != nil {
			return err
		}
		if _, err := measuredRun(ctx, cfg.Methods[0], src, dst, "", 0); err != nil {
			return fmt.Errorf("%s warm-up: %w", cfg.Methods[0], err)
		}
		fmt.Fprintf(os.Stderr, "  %-16s warm-up done (not counted)\n", cfg.Methods[0])
		// Every round runs every method once; the order rotates per round
		// (raw-engine, engine-raw, …), so load from anything else on the
		// machine — and a trend in it — hits all alike.
		for round := range cfg.Runs {
			order := slices.Clone(cfg.Methods)
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, method := range order {
				if err := freshDestination(ctx, dc); err != nil {
					return err
				}
				prof := ""
				if *profile != "" && round == 0 && si == len(cfg.Docs)-1 {
					prof = filepath.Join(*profile, fmt.Sprintf("%d-%s", n, method))
				}
				r, err := measuredRun(ctx, method, src, dst, prof, *profileSecs)
				if err != nil {
					return fmt.Errorf("%s round %d: %w", method, round+1, err)
				}
				r.Round = round + 1
				if r.Digest, err = digest(ctx, dc); err != nil {
					return fmt.Errorf("%s round %d: destination digest: %w", method, round+1, err)
				}
				if r.Digest != size.SourceDigest {
					return fmt.Errorf("%s round %d: destination digest %s differs from the source's %s", method, round+1, r.Digest, size.SourceDigest)
				}
				fmt.Fprintf(os.Stderr, "  %-16s round %d: %.2fs; CPU s copier %.2f, source %.2f, destination %.2f; peak RSS MB %.0f/%.0f/%.0f (load %s)\n",
					method, round+1, r.Seconds, r.Copier.CPUSeconds, r.Source.CPUSeconds, r.Dest.CPUSeconds,
					r.Copier.PeakRSSMB, r.Source.PeakRSSMB, r.Dest.PeakRSSMB, loadAverage())
				size.Runs = append(size.Runs, r)
			}
		}
		results = append(results, size)
	}
	cfg.LoadAfter = loadAverage()
	printCopyTables(os.Stdout, cfg, results)
	fmt.Printf("Load average (1/5/15 min) on %d CPUs: %s before, %s after.\n", runtime.NumCPU(), cfg.LoadBefore, cfg.LoadAfter)
	return writeBenchJSON("copy", map[string]any{"config": cfg, "sizes": results})
}

// benchOplog is the source's oplog cap, in entries.
const benchOplog = 50_000

// settleOplog waits until the source's capped cleanup, on while the
// documents are generated, has brought the oplog down to its cap, then
// turns the cleanup off for the copies (a cleanup in the middle of one
// would be a burst of source work, and one that deletes hundreds of
// thousands of entries takes minutes). Without it 4 × 100,000 generated
// documents leave 400,000 entries, eight times the cap, for the engine's
// listDatabases to walk (FerretDB computes every database's size for it),
// where a source's cleanup keeps its oplog at the cap.
func settleOplog(ctx context.Context, src *mongotest.Server, c *mongo.Client) error {
	oplog := migration.Namespace{DB: "local", Coll: "oplog.rs"}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, _, err := catalog.Count(ctx, c, oplog)
		if err != nil {
			return err
		}
		if n <= benchOplog {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the source's oplog still holds %d entries 2 minutes after the documents were generated (cap %d)", n, benchOplog)
		}
		time.Sleep(time.Second)
	}
	return src.RestartTrimmingEvery(ctx, 24*time.Hour)
}

// startCopyServers is startServers with the source's oplog, and with debug
// handlers (pprof) when profiling.
func startCopyServers(ctx context.Context, backend mongotest.Backend, debug bool) (s *servers, err error) {
	s = &servers{}
	if s.dir, err = os.MkdirTemp("", "livemigrate-bench-copy-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// Nothing writes to the source during a copy, so its capped cleanup
	// (every 2 s by default: ANALYZE over the whole oplog) would only be
	// background load, half the source's CPU while the copy starts. So it
	// runs only while documents are generated, keeping the oplog at its cap
	// as a live source's cleanup does; settleOplog turns it off.
	if s.src, err = mongotest.Start(ctx, mongotest.Options{ReplSet: "rs0", Oplog: benchOplog,
		Dir: filepath.Join(s.dir, "src"), Backend: backend, Debug: debug}); err != nil {
		return nil, err
	}
	if s.dst, err = mongotest.Start(ctx, mongotest.Options{Dir: filepath.Join(s.dir, "dst"), Backend: backend, Debug: debug}); err != nil {
		return nil, err
	}
	if s.sc, err = s.src.Connect(ctx); err != nil {
		return nil, err
	}
	if s.dc, err = s.dst.Connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// measuredRun runs one copy in a child process and measures the child and
// both server processes; with prof it writes CPU profiles named prof-*.
func measuredRun(ctx context.Context, method string, src, dst *mongotest.Server, prof string, profSecs int) (copyRun, error) {
	r := copyRun{Method: method}
	servers := []*mongotest.Server{src, dst}
	before := make([]float64, 2)
	for i, s := range servers {
		resetPeakRSS(s.PID())
		before[i] = procCPUSeconds(s.PID())
	}
	var wg sync.WaitGroup
	if prof != "" {
		for i, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("%s-%s.pprof", prof, []string{"source", "destination"}[i])
				if err := fetchProfile(ctx, s.DebugAddr(), profSecs, name); err != nil {
					fmt.Fprintln(os.Stderr, "  server profile:", err)
				}
			}()
		}
	}
	res, usage, err := runChild(ctx, method, src.URI(), dst.URI(), prof)
	wg.Wait()
	if err != nil {
		return r, err
	}
	r.Seconds, r.Child, r.Copier = res.Seconds, res, usage
	for i, s := range servers {
		u := procUsage{CPUSeconds: procCPUSeconds(s.PID()) - before[i], PeakRSSMB: procPeakRSSMB(s.PID())}
		if i == 0 {
			r.Source = u
		} else {
			r.Dest = u
		}
	}
	return r, nil
}

func fetchProfile(ctx context.Context, addr string, secs int, path string) error {
	if addr == "" {
		return fmt.Errorf("no debug handler")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", req.URL, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// procCPUSeconds is utime+stime of pid from /proc/<pid>/stat (0 if unknown).
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// resetPeakRSS sets pid's VmHWM back to its current RSS (clear_refs 5).
func resetPeakRSS(pid int) { _ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) }

// procPeakRSSMB is pid's VmHWM in MB (0 if unknown).
func procPeakRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// digest is a sha256 over the bench database: per collection its name,
// document count, the sorted sha256 of every document's bytes (so the
// order of the documents does not matter and their bytes do) and its
// secondary index specs.
func digest(ctx context.Context, c *mongo.Client) (string, error) {
	db := c.Database("bench")
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range names {
		g.Go(func() error {
			cur, err := db.Collection(name).Find(gctx, bson.D{}, options.Find().SetBatchSize(1000))
			if err != nil {
				return err
			}
			defer cur.Close(gctx)
			var sums [][32]byte
			for cur.Next(gctx) {
				sums = append(sums, sha256.Sum256(cur.Current))
			}
			if err := cur.Err(); err != nil {
				return err
			}
			slices.SortFunc(sums, func(a, b [32]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
			h := sha256.New()
			for _, s := range sums {
				h.Write(s[:])
			}
			ixs, err := catalog.ListIndexes(gctx, c, nsOf(name))
			if err != nil {
				return err
			}
			var specs []string
			for _, ix := range ixs {
				specs = append(specs, ix.Name+"="+ix.Spec.Lookup("key").String())
			}
			slices.Sort(specs)
			parts[i] = fmt.Sprintf("%s:%d:%x:%s", name, len(sums), h.Sum(nil), strings.Join(specs, ","))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:8]), nil
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
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func printCopyTables(w io.Writer, cfg copyConfig, sizes []copySize) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "docs\tMB\tmethod\tseconds per round\t÷ raw per round\tmedian s\tmedian ÷ raw\tdocs/s\tµs CPU/doc (copier+src+dst)\tpeak RSS MB copier/src/dst\t")
	for _, sz := range sizes {
		raw := map[int]float64{}
		for _, r := range sz.Runs {
			if r.Method == "raw" {
				raw[r.Round] = r.Seconds
			}
		}
		for _, m := range cfg.Methods {
			var secs, ratios, cpuC, cpuS, cpuD []float64
			var rss [3]float64
			for _, r := range sz.Runs {
				if r.Method != m {
					continue
				}
				secs = append(secs, r.Seconds)
				ratios = append(ratios, r.Seconds/raw[r.Round])
				cpuC, cpuS, cpuD = append(cpuC, r.Copier.CPUSeconds), append(cpuS, r.Source.CPUSeconds), append(cpuD, r.Dest.CPUSeconds)
				rss = [3]float64{max(rss[0], r.Copier.PeakRSSMB), max(rss[1], r.Source.PeakRSSMB), max(rss[2], r.Dest.PeakRSSMB)}
			}
			perDoc := func(xs []float64) float64 { return median(xs) / float64(sz.Documents) * 1e6 }
			fmt.Fprintf(tw, "%d×%d\t%.1f\t%s\t%s\t%s\t%.2f\t%.3f\t%.0f\t%.0f+%.0f+%.0f\t%.0f/%.0f/%.0f\t\n",
				cfg.Collections, sz.DocsPerCollection, float64(sz.Bytes)/1e6, m, joinFloats(secs, "%.1f"), joinFloats(ratios, "%.2f"),
				median(secs), median(ratios), float64(sz.Documents)/median(secs),
				perDoc(cpuC), perDoc(cpuS), perDoc(cpuD), rss[0], rss[1], rss[2])
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nWhere the time goes (medians over rounds; per collection: mean over collections of the reader waiting for the source, for the budget/inserter, inserting, building indexes):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "docs\tmethod\tto first read s\tfirst 1000 docs s\tread s\tqueue s\tinsert s\tindex s\tfirst coll done s\tlast coll done s\t")
	for _, sz := range sizes {
		for _, m := range cfg.Methods {
			var setup, ramp, rd, q, ins, ix, first, last []float64
			for _, r := range sz.Runs {
				if r.Method != m || len(r.Child.Namespaces) == 0 {
					continue
				}
				setup = append(setup, r.Child.SetupSeconds)
				var a [5]float64
				f, l := r.Child.Namespaces[0].DoneAt, 0.0
				for _, ns := range r.Child.Namespaces {
					a[0] += ns.ReadSeconds
					a[1] += ns.QueueSeconds
					a[2] += ns.InsertSeconds
					a[3] += ns.IndexSeconds
					a[4] += ns.FirstBatchesSeconds
					f, l = min(f, ns.DoneAt), max(l, ns.DoneAt)
				}
				k := float64(len(r.Child.Namespaces))
				rd, q, ins, ix, ramp = append(rd, a[0]/k), append(q, a[1]/k), append(ins, a[2]/k), append(ix, a[3]/k), append(ramp, a[4]/k)
				first, last = append(first, f), append(last, l)
			}
			fmt.Fprintf(tw, "%d×%d\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", cfg.Collections, sz.DocsPerCollection, m,
				median(setup), median(ramp), median(rd), median(q), median(ins), median(ix), median(first), median(last))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "Each copier runs in a child process of its own (CPU = user+sys, RSS = ru_maxrss); the servers are separate FerretDB processes (CPU from /proc/PID/stat, peak RSS = VmHWM, reset before each run). Every copy's destination digest (sha256 of every document and index) equals the source's.")
}

func joinFloats(xs []float64, format string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, " ")
}

// runChild runs one copy in a process of its own so its CPU time and peak
// RSS are its alone; with prof the child writes a CPU profile there.
func runChild(ctx context.Context, method, src, dst, prof string) (childResult, procUsage, error) {
	exe, err := os.Executable()
	if err != nil {
		return childResult{}, procUsage{}, err
	}
	cmd := exec.CommandContext(ctx, exe, childCommand, method, src, dst)
	cmd.Stderr = os.Stderr
	if prof != "" {
		cmd.Env = append(os.Environ(), "BENCH_CPUPROFILE="+prof+"-copier.pprof")
	}
	out, err := cmd.Output()
	if err != nil {
		return childResult{}, procUsage{}, err
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, procUsage{}, fmt.Errorf("child output %q: %w", out, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return res, procUsage{
		CPUSeconds: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(),
		PeakRSSMB:  float64(ru.Maxrss) / 1024, // KiB on Linux
	}, nil
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
