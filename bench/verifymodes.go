package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// The verification-modes benchmark (docs/design/commit.md): the same data
// and the same steady writes, committed once per verification mode, each
// into a fresh destination; a table of the downtime and its parts.
type verifyModesCase struct {
	Mode                string  `json:"mode"`
	Documents           int     `json:"documents"`
	BackgroundReady     bool    `json:"backgroundPassesDone"`
	DowntimeSeconds     float64 `json:"downtimeSeconds"`
	CommitPointSeconds  float64 `json:"commitPointSeconds"`
	DrainSeconds        float64 `json:"drainSeconds"`
	IndexRestoreSeconds float64 `json:"indexRestoreSeconds"`
	VerificationSeconds float64 `json:"verificationSeconds"`
	DocumentsRechecked  int64   `json:"documentsRechecked"`
	Found               int64   `json:"foundBeforeRepair"`
	Repaired            int64   `json:"repaired"`
	Verified            bool    `json:"verified"`
	Coverage            string  `json:"coverage"`
	Background          string  `json:"background,omitempty"`
}

func verifyModesBench(args []string) error {
	fs := flag.NewFlagSet("verifymodes", flag.ContinueOnError)
	docs := fs.Int("docs", 5000, "documents per collection (4 collections)")
	rate := fs.Float64("rate", 10, "steady workload in operations per second")
	steady := fs.Duration("steady", 15*time.Second, "steady writes before the commit")
	modes := fs.String("modes", "continuous,full", "verification modes, one run each")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := startServers(ctx, "verifymodes", mongotest.Options{ReplSet: "rs0", Oplog: 3000}, mongotest.SQLite)
	if err != nil {
		return err
	}
	defer srv.Close()
	const colls = 4
	fmt.Fprintf(os.Stderr, "seeding %d collections × %d documents…\n", colls, *docs)
	if _, err := generate(ctx, srv.sc, colls, 0, *docs, 500); err != nil {
		return err
	}
	nss := []string{"bench.c0", "bench.c1", "bench.c2", "bench.c3"}
	var out []verifyModesCase
	idBase := int64(1_000_000_000)
	for _, m := range strings.Split(*modes, ",") {
		mode := engine.VerifyMode(m)
		if err := mode.Validate(); err != nil {
			return err
		}
		if err := freshDestination(ctx, srv.dc); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "mode %s: copy, change application…\n", mode)
		e, err := engine.New(engine.Options{Source: mdb.URI(srv.src.URI()), Destination: mdb.URI(srv.dst.URI()), Verification: mode},
			slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
		if err != nil {
			return err
		}
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- e.Run(runCtx) }()
		if err := waitUntil(ctx, errc, 10*time.Minute, func() bool { return e.Progress().CanCommit }); err != nil {
			cancel()
			return fmt.Errorf("mode %s: wait for canCommit: %w", mode, err)
		}
		c := verifyModesCase{Mode: string(mode), Documents: colls * *docs}
		if mode == engine.VerifyContinuous {
			// A sync long enough for the background passes to finish.
			err := waitUntil(ctx, errc, 10*time.Minute, func() bool { st, _ := e.BackgroundVerification(); return st.Passes >= colls })
			if err != nil {
				cancel()
				return fmt.Errorf("mode %s: wait for the background passes: %w", mode, err)
			}
			c.BackgroundReady = true
		}
		fmt.Fprintf(os.Stderr, "mode %s: steady writes at %.0f ops/s for %s, then commit…\n", mode, *rate, *steady)
		wl := mongotest.StartWorkload(ctx, srv.sc, mongotest.WorkloadOptions{Namespaces: nss, Writers: 2, Rate: *rate, DocBytes: 500, Seed: 7, IDBase: idBase})
		idBase += 1_000_000_000
		time.Sleep(*steady)
		if _, err := wl.Stop(); err != nil {
			cancel()
			return err
		}
		err = waitUntil(ctx, errc, 5*time.Minute, func() bool { return e.Progress().CanCommit })
		if err == nil {
			err = e.Commit()
		}
		if err == nil {
			err = <-errc
		}
		cancel()
		if err != nil {
			return fmt.Errorf("mode %s: commit: %w", mode, err)
		}
		r := e.CommitReport()
		c.DowntimeSeconds, c.CommitPointSeconds, c.DrainSeconds = r.DowntimeSeconds, r.CommitPointSeconds, r.DrainSeconds
		c.IndexRestoreSeconds, c.VerificationSeconds = r.IndexRestoreSeconds, r.VerificationSeconds
		c.DocumentsRechecked, c.Found, c.Repaired, c.Verified = r.DocumentsRechecked, r.Found.Total(), r.Repaired, r.Verified
		if cv := r.Coverage; cv != nil {
			c.Coverage = fmt.Sprintf("complete=%v, %d/%d by pass", cv.Complete, cv.ByPass, cv.Namespaces)
		}
		if b := r.Background; b != nil {
			c.Background = fmt.Sprintf("%d docs in %d passes, %d rechecked, %d pauses %.0fs, slowed %.0fs", b.DocumentsCompared, b.Passes, b.Rechecked, b.Pauses, b.PausedSeconds, b.SlowedSeconds)
		}
		out = append(out, c)
		if p := e.Progress(); p.State != migration.StateCommitted {
			return fmt.Errorf("mode %s: state %s after commit", mode, p.State)
		}
	}
	printVerifyModes(os.Stdout, out)
	return writeBenchJSON("verifymodes", map[string]any{"config": map[string]any{"docs": colls * *docs, "rate": *rate, "steadySeconds": steady.Seconds()}, "results": out})
}

func printVerifyModes(w io.Writer, cs []verifyModesCase) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tdocs\tdowntime s\tcommit point s\tdrain s\tindex restore s\tverification s\trechecked\tfound\trepaired\t")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t\n", c.Mode, c.Documents, c.DowntimeSeconds, c.CommitPointSeconds,
			c.DrainSeconds, c.IndexRestoreSeconds, c.VerificationSeconds, c.DocumentsRechecked, c.Found, c.Repaired)
	}
	_ = tw.Flush()
	for _, c := range cs {
		fmt.Fprintf(w, "%s: coverage %s; verified %v", c.Mode, c.Coverage, c.Verified)
		if c.Background != "" {
			fmt.Fprintf(w, "; background %s", c.Background)
		}
		fmt.Fprintln(w)
	}
}
