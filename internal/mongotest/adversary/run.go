package adversary

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Config is one adversarial round: seed the source, start the workload and
// the engine, kill the engine at seeded points, restart it, commit, compare.
type Config struct {
	Seed uint64
	// Binary is the livemigrate command (BuildBinary).
	Binary string
	// SourceURI and DestinationURI are the servers; Source and Destination
	// clients on them.
	SourceURI, DestinationURI string
	Source, Destination       *mongo.Client
	Workload                  WorkloadOptions
	// SeedDocuments is the number of documents each starting collection gets.
	SeedDocuments int
	// CopyKills and ApplyKills are the kills aimed at the copy and at change
	// application (where a kill lands is recorded: a copy may end first).
	CopyKills, ApplyKills int
	// Apply is how long the workload keeps writing after the last restart.
	Apply time.Duration
	// LogDir gets the engine's log (engine.log).
	LogDir string
	Logf   func(format string, args ...any)
}

// Kill is one kill -9 of the engine.
type Kill struct {
	Aimed  migration.Phase // where the kill was aimed
	Landed migration.Phase // the phase the engine last reported
	After  time.Duration   // seeded delay after the aimed phase was seen
	// Copying: wait for the first copied documents too, not only the phase.
	AfterDocuments bool
	Copied         int64 // documents copied when killed
}

// Result is what a round did and found.
type Result struct {
	Seed     uint64
	Counts   Counts
	Kills    []Kill
	Restarts int
	State    migration.State
	// Report is the engine's commit report as its API serves it.
	Report map[string]any
	// Repaired is the report's repaired count; RepairedIn lists the
	// namespaces with a non-zero count.
	Repaired   int64
	RepairedIn map[string]int64
	// RenameTargets are the collections renames created (the only ones
	// allowed to need repair: docs/design/capture.md).
	RenameTargets []string
	Differences   []Difference
	Stats         CompareStats
	Elapsed       time.Duration
}

// Run runs one round. An error is a failure of the round (the engine
// failed, never committed, or a server did not answer), not a difference:
// differences are in the result.
func Run(ctx context.Context, c Config) (*Result, error) {
	start := time.Now()
	logf := c.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := &Result{Seed: c.Seed, RepairedIn: map[string]int64{}}
	wo := c.Workload
	wo.Seed = c.Seed
	live, err := Seed(ctx, c.Source, wo, c.SeedDocuments)
	if err != nil {
		return res, err
	}
	logf("seeded %d collections with %d documents each in %s", len(live), c.SeedDocuments, time.Since(start).Round(time.Millisecond))
	wl := StartWorkload(ctx, c.Source, wo, live)
	stopped := false
	defer func() {
		if !stopped {
			wl.Stop()
		}
	}()

	r := rand.New(rand.NewPCG(c.Seed, 7))
	var plan []Kill
	for range c.CopyKills {
		plan = append(plan, Kill{Aimed: migration.PhaseCopying, After: time.Duration(r.IntN(400)) * time.Millisecond, AfterDocuments: r.IntN(2) == 0})
	}
	for range c.ApplyKills {
		plan = append(plan, Kill{Aimed: migration.PhaseApplying, After: time.Duration(r.IntN(3000)) * time.Millisecond})
	}
	logPath := filepath.Join(c.LogDir, "engine.log")
	startEngine := func() (*Process, error) {
		return StartProcess(ctx, c.Binary, c.SourceURI, c.DestinationURI, logPath)
	}
	for i, k := range plan {
		p, err := startEngine()
		if err != nil {
			return res, err
		}
		if i > 0 {
			res.Restarts++
		}
		reached := func(s State) bool {
			ph := s.Progress.Phase
			if k.Aimed == migration.PhaseCopying {
				copied := s.Progress.CollectionCopy.CopiedDocuments > 0 || !k.AfterDocuments
				return (ph == migration.PhaseCopying && copied) || ph == migration.PhaseIndexing || ph == migration.PhaseApplying
			}
			return ph == migration.PhaseApplying
		}
		if _, err := p.WaitFor(ctx, "phase "+string(k.Aimed), 3*time.Minute, reached); err != nil {
			p.Kill()
			return res, fmt.Errorf("kill %d: %w (log %s)", i+1, err, logPath)
		}
		time.Sleep(k.After)
		s, _ := p.State()
		p.Kill()
		k.Landed, k.Copied = s.Progress.Phase, s.Progress.CollectionCopy.CopiedDocuments
		res.Kills = append(res.Kills, k)
		logf("kill -9 %d aimed at %q landed in %q after %s (%d documents copied, %d workload ops)", i+1, k.Aimed, k.Landed, k.After, k.Copied, wl.Counts().Ops)
	}

	p, err := startEngine()
	if err != nil {
		return res, err
	}
	defer p.Kill()
	if len(plan) > 0 {
		res.Restarts++
	}
	if _, err := p.WaitFor(ctx, "change application", 5*time.Minute, func(s State) bool { return s.Progress.Phase == migration.PhaseApplying }); err != nil {
		return res, fmt.Errorf("%w (log %s)", err, logPath)
	}
	time.Sleep(c.Apply)
	stopped = true
	res.Counts = wl.Stop()
	res.RenameTargets = wl.RenameTargets()
	logf("workload stopped: %d ops (%d DDL, %d failed on the source), %d documents moved by renames; %v", res.Counts.Ops, res.Counts.DDL, res.Counts.Failed, res.Counts.Renamed, res.Counts.ByKind)
	for _, e := range wl.Errors() {
		logf("workload error (the source refused it): %s", e)
	}
	if _, err := p.WaitFor(ctx, "canCommit", 3*time.Minute, func(s State) bool { return s.Progress.CanCommit }); err != nil {
		return res, fmt.Errorf("%w (log %s)", err, logPath)
	}
	if err := p.Commit(); err != nil {
		return res, err
	}
	s, err := p.WaitFor(ctx, "COMMITTED", 5*time.Minute, func(s State) bool {
		return s.Progress.State == migration.StateCommitted && s.Progress.CanWrite && s.Report != nil
	})
	res.State, res.Report = s.Progress.State, s.Report
	if err != nil {
		return res, fmt.Errorf("%w (log %s)", err, logPath)
	}
	res.Repaired = number(s.Report["repaired"])
	if vs, ok := s.Report["verification"].([]any); ok {
		for _, v := range vs {
			if m, ok := v.(map[string]any); ok {
				if n := number(m["repaired"]); n > 0 {
					res.RepairedIn[fmt.Sprint(m["namespace"])] = n
				}
			}
		}
	}
	res.Differences, res.Stats, err = Compare(ctx, c.Source, c.Destination, CompareOptions{
		SkipDatabases: []string{"__livemigrate"}, MaxDocBytes: max(2*wo.Gen.withDefaults().MaxDocBytes, 1<<20),
	})
	res.Elapsed = time.Since(start)
	return res, err
}

func number(v any) int64 {
	if f, ok := v.(float64); ok {
		return int64(f)
	}
	return 0
}

// UnexpectedRepairs lists the namespaces repaired beyond the documented
// bound: any namespace not created by a rename, or more repaired documents
// than renames moved.
func (r *Result) UnexpectedRepairs() []string {
	var out []string
	for ns, n := range r.RepairedIn {
		if !slices.Contains(r.RenameTargets, ns) {
			out = append(out, fmt.Sprintf("%s: %d repaired (not a rename target)", ns, n))
		}
	}
	if r.Repaired > r.Counts.Renamed {
		out = append(out, fmt.Sprintf("%d repaired in all, more than the %d documents renames moved", r.Repaired, r.Counts.Renamed))
	}
	slices.Sort(out)
	return out
}
