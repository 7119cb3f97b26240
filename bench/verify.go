package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/verify"
)

// verifyChildCommand runs one measured method in a process of its own.
const verifyChildCommand = "verify-child"

type verifyRow struct {
	DocsPerCollection int       `json:"docsPerCollection"`
	Method            string    `json:"method"`
	Documents         int64     `json:"documentsPerSide"`
	Bytes             int64     `json:"bytesPerSide"`
	Seconds           float64   `json:"medianSeconds"`
	DocsPerSec        float64   `json:"docsPerSecondPerSide"`
	PeakRSSMB         float64   `json:"peakRSSMB"`
	RatioToDualScan   float64   `json:"ratioToDualScan,omitempty"`
	AllSeconds        []float64 `json:"allSeconds"`
}

// verifyBench compares verification with a raw dual scan (both sides read
// in full, nothing compared) on the copy benchmark's dataset, at several
// dataset sizes: throughput ratio and peak RSS of each in its own process.
func verifyBench(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	sizes := fs.String("docs", "25000,50000", "documents per collection, one dataset size per value")
	colls := fs.Int("collections", 4, "collections")
	docBytes := fs.Int("doc-bytes", 1000, "approximate document size")
	runs := fs.Int("runs", 3, "runs per method (the median is reported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	docs, err := positiveList[int]("-docs", *sizes)
	if err != nil {
		return err
	}
	slices.Sort(docs)

	ctx := context.Background()
	srv, err := startServers(ctx, "verify", mongotest.Options{}, mongotest.SQLite)
	if err != nil {
		return err
	}
	defer srv.Close()
	src, dst, sc, dc := srv.src, srv.dst, srv.sc, srv.dc

	var rows []verifyRow
	have := 0
	for _, n := range docs {
		fmt.Fprintf(os.Stderr, "generating %d collections × %d documents of ~%d bytes on both sides…\n", *colls, n, *docBytes)
		if _, err := generate(ctx, sc, *colls, have, n, *docBytes); err != nil {
			return err
		}
		if err := copyRange(ctx, sc, dc, int64(have)); err != nil {
			return err
		}
		have = n
		total := int64(*colls * n)
		// Runs alternate between the methods so load drift on a shared
		// machine hits both alike.
		methods := []string{"dualscan", "verify"}
		byMethod := map[string]*verifyRow{}
		for _, m := range methods {
			byMethod[m] = &verifyRow{DocsPerCollection: n, Method: m, Documents: total}
		}
		for run := range *runs {
			for _, method := range methods {
				row := byMethod[method]
				res, err := runVerifyChild(method, src.URI(), dst.URI())
				if err != nil {
					return fmt.Errorf("%s run %d: %w", method, run+1, err)
				}
				fmt.Fprintf(os.Stderr, "  %-8s run %d: %.2fs, rss %.0f MB\n", method, run+1, res.Seconds, res.PeakRSSMB)
				row.AllSeconds = append(row.AllSeconds, res.Seconds)
				row.PeakRSSMB = max(row.PeakRSSMB, res.PeakRSSMB)
				row.Bytes = max(row.Bytes, res.Bytes)
			}
		}
		for _, m := range methods {
			row := byMethod[m]
			row.Seconds = median(row.AllSeconds)
			row.DocsPerSec = float64(total) / row.Seconds
			if m == "verify" {
				row.RatioToDualScan = row.DocsPerSec / byMethod["dualscan"].DocsPerSec
			}
			rows = append(rows, *row)
		}
	}
	printVerifyTable(os.Stdout, rows)
	return writeBenchJSON("verify", map[string]any{"results": rows})
}

func printVerifyTable(w io.Writer, rows []verifyRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "docs/coll\tmethod\tdocs/side\tMB/side\tmedian s\tdocs/s/side\tverify/dualscan\tpeak RSS MB\t")
	for _, r := range rows {
		ratio := ""
		if r.RatioToDualScan > 0 {
			ratio = fmt.Sprintf("%.3f", r.RatioToDualScan)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f\t%.2f\t%.0f\t%s\t%.0f\t\n", r.DocsPerCollection, r.Method, r.Documents,
			float64(r.Bytes)/1e6, r.Seconds, r.DocsPerSec, ratio, r.PeakRSSMB)
	}
	tw.Flush()
	fmt.Fprintln(w, "Each method runs in a child process of its own (peak RSS = its ru_maxrss); equal source and destination, so verify does one pass.")
}

type verifyChildResult struct {
	Seconds   float64 `json:"seconds"`
	Bytes     int64   `json:"bytes"`
	PeakRSSMB float64 `json:"peakRSSMB"`
}

func runVerifyChild(method, src, dst string) (verifyChildResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return verifyChildResult{}, err
	}
	cmd := exec.Command(exe, verifyChildCommand, method, src, dst)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return verifyChildResult{}, err
	}
	var res verifyChildResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("child output %q: %w", out, err)
	}
	res.PeakRSSMB = float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
	return res, nil
}

// verifyChild is the child process: run method, print elapsed seconds.
func verifyChild(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: %s dualscan|verify SRC DST", verifyChildCommand)
	}
	ctx := context.Background()
	src, err := mongo.Connect(options.Client().ApplyURI(args[1]))
	if err != nil {
		return err
	}
	defer src.Disconnect(ctx)
	dst, err := mongo.Connect(options.Client().ApplyURI(args[2]))
	if err != nil {
		return err
	}
	defer dst.Disconnect(ctx)
	start := time.Now()
	var res verifyChildResult
	switch args[0] {
	case "dualscan":
		res.Bytes, err = dualScan(ctx, src, dst)
	case "verify":
		var v *verify.Verifier
		v, err = verify.New(verify.Options{Source: src, Destination: dst, Fresh: true, RunID: "bench"},
			slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err == nil {
			var rep *verify.Report
			if rep, err = v.Run(ctx); err == nil && !rep.Equal() {
				err = fmt.Errorf("verify found differences on an equal copy: %+v", rep.Totals)
			}
		}
	default:
		err = fmt.Errorf("unknown method %q", args[0])
	}
	if err != nil {
		return err
	}
	res.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// dualScan reads every collection of database bench on both sides in full
// with one unsorted cursor per side, two collections at a time (verify's
// default concurrency), comparing nothing. It returns the source's bytes.
func dualScan(ctx context.Context, src, dst *mongo.Client) (int64, error) {
	names, err := src.Database("bench").ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return 0, err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	sizes := make([]int64, len(names))
	for i, name := range names {
		g.Go(func() error {
			sg, ctx := errgroup.WithContext(ctx)
			for side, c := range []*mongo.Client{src, dst} {
				sg.Go(func() error {
					cur, err := c.Database("bench").Collection(name).Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
					if err != nil {
						return err
					}
					defer cur.Close(ctx)
					var n int64
					for cur.Next(ctx) {
						n += int64(len(cur.Current))
					}
					if side == 0 {
						sizes[i] = n
					}
					return cur.Err()
				})
			}
			return sg.Wait()
		})
	}
	err = g.Wait()
	var total int64
	for _, s := range sizes {
		total += s
	}
	return total, err
}

// copyRange copies the documents with _id >= from of every collection of
// database bench (and, the first time, its indexes) so the destination is
// an exact copy (generated documents hold random ObjectIDs).
func copyRange(ctx context.Context, src, dst *mongo.Client, from int64) error {
	names, err := src.Database("bench").ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	for _, name := range names {
		cur, err := src.Database("bench").Collection(name).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}}}}, options.Find().SetBatchSize(1000))
		if err != nil {
			return err
		}
		to := dst.Database("bench").Collection(name)
		batch := make([]any, 0, 1000)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			_, err := to.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
			batch = batch[:0]
			return err
		}
		for cur.Next(ctx) {
			batch = append(batch, slices.Clone(cur.Current))
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return fmt.Errorf("copy %s: %w", name, err)
				}
			}
		}
		if err := cur.Err(); err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
		_ = cur.Close(ctx)
		if err := flush(); err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
		if from > 0 {
			continue
		}
		ixs, err := src.Database("bench").Collection(name).Indexes().List(ctx)
		if err != nil {
			return err
		}
		for ixs.Next(ctx) {
			spec := ixs.Current
			if n, _ := spec.Lookup("name").StringValueOK(); n == "_id_" {
				continue
			}
			var clean bson.D
			elems, _ := spec.Elements()
			for _, e := range elems {
				if k := e.Key(); k != "v" && k != "ns" {
					clean = append(clean, bson.E{Key: k, Value: e.Value()})
				}
			}
			if err := dst.Database("bench").RunCommand(ctx, bson.D{{Key: "createIndexes", Value: name}, {Key: "indexes", Value: bson.A{clean}}}).Err(); err != nil {
				return fmt.Errorf("index %s: %w", name, err)
			}
		}
		_ = ixs.Close(ctx)
	}
	return nil
}
