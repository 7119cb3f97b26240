package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/mongotest/adversary"
)

// soakRow is one adversarial round of the soak.
type soakRow struct {
	Round       int               `json:"round"`
	Seed        uint64            `json:"seed"`
	Operations  int64             `json:"operations"`
	DDL         int64             `json:"ddl"`
	Kills       int               `json:"kills"`
	KilledIn    []migration.Phase `json:"killedIn"`
	Restarts    int               `json:"restarts"`
	Differences int               `json:"differences"`
	Repaired    int64             `json:"repaired"`
	Bound       int64             `json:"repairBound"`
	Unexpected  []string          `json:"unexpectedRepairs,omitempty"`
	Documents   int64             `json:"documentsCompared"`
	Bytes       int64             `json:"bytesCompared"`
	Seconds     float64           `json:"seconds"`
	Error       string            `json:"error,omitempty"`
	Examples    []string          `json:"examples,omitempty"`
	Workload    adversary.Counts  `json:"workload"`
	Report      map[string]any    `json:"commitReport,omitempty"`
	Kill        []adversary.Kill  `json:"killDetails"`
	State       migration.State   `json:"state"`
}

// soakBench runs adversarial rounds (internal/mongotest/adversary) until
// -duration has passed: each round on fresh servers, seeded from -seed +
// round, and prints operations, kills, restarts, differences and repaired
// documents per round and in total. A round that fails, differs or
// repairs beyond the documented bound is printed with its seed; the
// command exits non-zero if any did.
func soakBench(args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	duration := fs.Duration("duration", 30*time.Minute, "how long to keep starting rounds")
	seed := fs.Uint64("seed", 0, "seed of the first round (0: the clock); round i uses seed+i")
	docs := fs.Int("docs", 200, "documents per starting collection")
	colls := fs.Int("collections", 3, "starting collections per database")
	maxDoc := fs.Int("max-doc-bytes", 2<<20, "largest generated document")
	apply := fs.Duration("apply", 10*time.Second, "workload time after the last restart, before commit")
	copyKills := fs.Int("copy-kills", 1, "kills aimed at the copy per round")
	applyKills := fs.Int("apply-kills", 2, "kills aimed at change application per round")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "livemigrate-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := adversary.BuildBinary(ctx, filepath.Join("cmd", "livemigrate"), tmp)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*duration)
	var rows []soakRow
	for round := 0; round == 0 || time.Now().Before(deadline); round++ {
		row := soakRound(ctx, round, *seed+uint64(round), bin, adversary.Config{
			Workload: adversary.WorkloadOptions{
				Databases: []string{"adv1", "adv2"}, Collections: *colls, Writers: 3, Rate: 60, DDLEvery: 1500 * time.Millisecond,
				Gen: adversary.GenOptions{MaxDocBytes: *maxDoc, LargeEvery: 12},
			},
			SeedDocuments: *docs, CopyKills: *copyKills, ApplyKills: *applyKills, Apply: *apply,
		})
		rows = append(rows, row)
		fmt.Fprintf(os.Stderr, "round %d seed %d: %d ops, %d kills %v, %d differences, %d repaired (bound %d) in %.0fs %s\n",
			row.Round, row.Seed, row.Operations, row.Kills, row.KilledIn, row.Differences, row.Repaired, row.Bound, row.Seconds, row.Error)
	}
	printSoak(os.Stdout, rows)
	if err := writeBenchJSON("soak", map[string]any{"rounds": rows}); err != nil {
		return err
	}
	var bad []string
	for _, r := range rows {
		if r.Error != "" || r.Differences > 0 || len(r.Unexpected) > 0 {
			bad = append(bad, fmt.Sprint(r.Seed))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d rounds failed (seeds %s): reproduce one with LIVEMIGRATE_SEED=<seed> go test -run TestAdversarial ./internal/mongotest/adversary", len(bad), strings.Join(bad, ", "))
	}
	return nil
}

func soakRound(ctx context.Context, round int, seed uint64, bin string, cfg adversary.Config) soakRow {
	row := soakRow{Round: round, Seed: seed}
	start := time.Now()
	srv, err := startServers(ctx, "soak", mongotest.Options{ReplSet: "rs0", Oplog: mongotest.DefaultOplog}, mongotest.SQLite)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	defer srv.Close()
	cfg.Seed, cfg.Binary = seed, bin
	cfg.SourceURI, cfg.DestinationURI, cfg.Source, cfg.Destination = srv.src.URI(), srv.dst.URI(), srv.sc, srv.dc
	cfg.LogDir = srv.dir
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "round %d: "+format+"\n", append([]any{round}, args...)...)
	}
	res, err := adversary.Run(ctx, cfg)
	row.Seconds = time.Since(start).Seconds()
	if err != nil {
		row.Error = err.Error()
		if b, rerr := os.ReadFile(filepath.Join(srv.dir, "engine.log")); rerr == nil {
			fmt.Fprintf(os.Stderr, "round %d seed %d engine log (tail):\n%s\n", round, seed, tailString(string(b), 4000))
		}
	}
	if res == nil {
		return row
	}
	row.Operations, row.DDL, row.Workload = res.Counts.Ops, res.Counts.DDL, res.Counts
	row.Kills, row.Restarts, row.Kill = len(res.Kills), res.Restarts, res.Kills
	for _, k := range res.Kills {
		row.KilledIn = append(row.KilledIn, k.Landed)
	}
	row.Differences, row.Repaired, row.Bound = len(res.Differences), res.Repaired, res.Counts.Renamed
	row.Documents, row.Bytes, row.Report, row.State = res.Stats.Documents, res.Stats.Bytes, res.Report, res.State
	if err == nil {
		row.Unexpected = res.UnexpectedRepairs()
	}
	for i, d := range res.Differences {
		if i == 10 {
			break
		}
		row.Examples = append(row.Examples, d.String())
	}
	return row
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func printSoak(w io.Writer, rows []soakRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tseed\toperations\tDDL\tkills\trestarts\tdifferences\trepaired\trename bound\tdocs compared\tMB\ts\tresult\t")
	var ops, ddl, kills, restarts, diffs, repaired, bound, docs int64
	var mb, secs float64
	failed := 0
	for _, r := range rows {
		result := "ok"
		switch {
		case r.Error != "":
			result = "FAILED: " + tailString(r.Error, 120)
		case r.Differences > 0:
			result = "DIFFERENT: " + strings.Join(r.Examples[:min(len(r.Examples), 2)], "; ")
		case len(r.Unexpected) > 0:
			result = "REPAIRED: " + strings.Join(r.Unexpected, "; ")
		}
		if result != "ok" {
			failed++
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.0f\t%s\t\n", r.Round, r.Seed, r.Operations, r.DDL, r.Kills, r.Restarts,
			r.Differences, r.Repaired, r.Bound, r.Documents, float64(r.Bytes)/1e6, r.Seconds, result)
		ops, ddl, kills, restarts = ops+r.Operations, ddl+r.DDL, kills+int64(r.Kills), restarts+int64(r.Restarts)
		diffs, repaired, bound, docs = diffs+int64(r.Differences), repaired+r.Repaired, bound+r.Bound, docs+r.Documents
		mb, secs = mb+float64(r.Bytes)/1e6, secs+r.Seconds
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.0f\t%d of %d rounds failed\t\n", ops, ddl, kills, restarts, diffs, repaired, bound, docs, mb, secs, failed, len(rows))
	tw.Flush()
	fmt.Fprintln(w, "Each round: fresh FerretDB (SQLite) servers, seeded documents, CRUD + DDL workload, kill -9 of the engine at seeded points, commit, independent comparison.")
	fmt.Fprintln(w, "repaired must be 0 outside collections made by renames (FerretDB logs no entries for renamed documents), and at most the rename bound.")
}
