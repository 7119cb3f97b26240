package verify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// LiveOptions configures a Live verifier. Zero fields take the defaults shown.
type LiveOptions struct {
	// Options configures the comparisons as for a Verifier (clients,
	// filters, TempDir, MetadataDB). MemoryEntries also bounds how many
	// _ids of changed documents one namespace holds in memory before they
	// are spilled to a file in TempDir. Repair is ignored: Commit says.
	Options

	// Lag returns the migration's current lag. Background work slows down
	// (a 50 ms sleep every 256 documents) while the lag is at or above
	// SlowLag (default 2 s), and stops while it is at or above PauseLag
	// (default 4 s) until it is below SlowLag again.
	Lag               func() time.Duration
	SlowLag, PauseLag time.Duration
	// PauseMax: a pause that has not brought the lag below SlowLag after
	// this long shows that the lag is not the verifier's doing (on
	// FerretDB one slow oplog poll holds it up): work then goes on slowed,
	// not paused, for PauseMax before it may pause again, so that passes
	// still finish (default 30 s). The commit's Hold always stops it.
	PauseMax time.Duration
	// QuietAfter: no change event observed for this long (default 12 s,
	// three polls of a loaded FerretDB) means the source takes no writes.
	// Then no change waits to be applied: the lag reads only the age of
	// the reader's knowledge (one oplog poll, which the verifier's reads
	// slow down but which delays nothing), so work goes on at full speed.
	// The first change observed restores the pacing; its lag is the poll
	// it waited for, and pausing lowers that.
	QuietAfter time.Duration

	// PassLimit: a namespace holding more changed _ids than this (memory
	// and spill file) drops them and is compared by a new pass
	// (default 4 × MemoryEntries).
	PassLimit int64

	// RecheckEvery is how often the changed documents of a namespace are
	// compared during the sync, so that few are left for the commit
	// (default 10 s).
	RecheckEvery time.Duration
}

// LiveStats is the background verifier's share of the work.
type LiveStats struct {
	// DocumentsCompared counts source documents compared by passes.
	DocumentsCompared int64 `json:"documentsCompared" bson:"documentsCompared"`
	// Passes counts namespace passes finished; PassesInvalidated those
	// made void by a catalog change or an overgrown set of changes.
	Passes            int `json:"passes" bson:"passes"`
	PassesInvalidated int `json:"passesInvalidated" bson:"passesInvalidated"`
	// Rechecked counts changed documents compared again during the sync.
	Rechecked int64 `json:"documentsRechecked" bson:"documentsRechecked"`
	// Pauses counts the times it stopped for lag (or the commit), and
	// PausedSeconds how long; SlowedSeconds is the time it slept to go
	// slower while the lag was raised. Both are wall time: workers that
	// pause (or slow down) together count once.
	Pauses        int     `json:"pauses" bson:"pauses"`
	PausedSeconds float64 `json:"pausedSeconds" bson:"pausedSeconds"`
	SlowedSeconds float64 `json:"slowedSeconds" bson:"slowedSeconds"`
	// PausesCutShort counts pauses ended after PauseMax with the lag
	// still up (LiveOptions.PauseMax).
	PausesCutShort int `json:"pausesCutShort" bson:"pausesCutShort"`
	// LastError is the last error that interrupted its work (it retries).
	LastError string `json:"lastError,omitempty" bson:"lastError,omitempty"`
}

// Coverage says how every namespace was compared after its last change.
type Coverage struct {
	// Complete: every document of every namespace was compared after its
	// last change (as the change feed reports changes).
	Complete   bool `json:"complete" bson:"complete"`
	Namespaces int  `json:"namespaces" bson:"namespaces"`
	// ByPass counts namespaces whose background pass held: only their
	// documents changed since it compared them were compared at commit.
	ByPass int `json:"namespacesByPass" bson:"namespacesByPass"`
	// InFull lists the namespaces compared in full at commit, and why.
	InFull []NamespaceReason `json:"comparedInFull,omitempty" bson:"comparedInFull,omitempty"`
	// DocumentsRechecked counts the changed documents compared at commit.
	DocumentsRechecked int64 `json:"documentsRechecked" bson:"documentsRechecked"`
}

// NamespaceReason is a namespace and why it was compared as it was.
type NamespaceReason struct {
	Namespace string `json:"namespace" bson:"namespace"`
	Reason    string `json:"reason" bson:"reason"`
}

// Live verifies a migration while its changes are applied: Run compares
// every namespace once in the background (throttled by lag) and Observe
// records the _id of every change event that reaches the destination after
// a namespace's comparison began. Commit then compares exactly those
// documents, plus in full every namespace without a valid pass.
// docs/design/verification.md has the argument why this misses nothing the
// change feed reports.
type Live struct {
	v      *Verifier
	opts   LiveOptions
	logger *slog.Logger // component=verify
	base   *slog.Logger // the caller's, for the verifier of Commit
	held   atomic.Bool
	// lastChange is when the last data change event was observed (unix
	// nanoseconds; at first, when the verifier was made).
	lastChange atomic.Int64

	mu sync.Mutex // guards the fields below
	// stop cancels the step in progress (Hold: an $in or scan in flight
	// would compete with the commit point and the drain).
	stop   context.CancelFunc
	ns     map[migration.Namespace]*liveNS
	seen   migration.Position // the newest position observed
	listed bool               // the source catalog is listed since the last DDL
	stats  LiveStats
	// proc is the source process last seen (procDirty: not saved yet).
	proc        mdb.Process
	procDirty   bool
	procUnknown bool // serverStatus refused: restarts go unnoticed
	procChecked time.Time
	// noPauseUntil: a pause was cut short (PauseMax); until then work is
	// slowed, not paused.
	noPauseUntil time.Time
	// pausedTo and slowedTo are the ends of the pause and slow-down time
	// counted so far (wallTime).
	pausedTo, slowedTo time.Time
}

// liveNS is one namespace's state.
type liveNS struct {
	gen     int64 // bumped by every mark and invalidation
	done    bool  // a pass finished since the last invalidation
	why     string
	changed *keySet // _ids changed since their last comparison; nil before a pass began
	last    time.Time
	src     int64 // documents on each side in the last pass
	dst     int64
	busy    bool // a recheck is in flight

	// Durability (livestore.go): keys added since the last Save, the
	// generation last saved, and whether the state changed since.
	unsaved  [][]byte
	savedGen int64
	dirty    bool
}

// NewLive checks opts and returns a Live verifier.
func NewLive(opts LiveOptions, logger *slog.Logger) (*Live, error) {
	if opts.Lag == nil {
		return nil, fmt.Errorf("verify: LiveOptions.Lag is required")
	}
	opts.Repair = false
	v, err := New(opts.Options, logger)
	if err != nil {
		return nil, err
	}
	o := &v.opts
	if opts.PauseLag <= 0 {
		opts.PauseLag = 4 * time.Second
	}
	if opts.SlowLag <= 0 || opts.SlowLag > opts.PauseLag {
		opts.SlowLag = min(2*time.Second, opts.PauseLag)
	}
	if opts.PauseMax <= 0 {
		opts.PauseMax = 30 * time.Second
	}
	if opts.PassLimit <= 0 {
		opts.PassLimit = 4 * int64(o.MemoryEntries)
	}
	if opts.RecheckEvery <= 0 {
		opts.RecheckEvery = 10 * time.Second
	}
	if opts.QuietAfter <= 0 {
		opts.QuietAfter = 12 * time.Second
	}
	opts.Options = *o
	l := &Live{v: v, opts: opts, logger: v.logger, base: logger, ns: map[migration.Namespace]*liveNS{}}
	l.lastChange.Store(time.Now().UnixNano())
	v.pace = l.pace
	return l, nil
}

// Stats returns the background verifier's share so far.
func (l *Live) Stats() LiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Hold stops background work for good (the commit began): the comparison
// in progress is cancelled (a recheck's documents go back to their set; an
// unfinished pass leaves its namespace to be compared in full at commit).
func (l *Live) Hold() {
	l.held.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop != nil {
		l.stop()
	}
}

func (l *Live) get(ns migration.Namespace) *liveNS {
	st := l.ns[ns]
	if st == nil {
		st = &liveNS{why: "not compared during the sync"}
		l.ns[ns] = st
	}
	return st
}

// addKey records key as changed; the caller holds l.mu.
func (l *Live) addKey(st *liveNS, key []byte) error {
	st.unsaved = append(st.unsaved, append([]byte(nil), key...))
	return st.changed.add(key, l.opts.MemoryEntries)
}

// invalidate voids ns's pass; the caller holds l.mu.
func (l *Live) invalidate(ns migration.Namespace, why string) {
	st := l.get(ns)
	if st.done {
		l.stats.PassesInvalidated++
	}
	st.gen++
	st.done, st.why, st.unsaved, st.dirty = false, why, nil, true
	if st.changed != nil {
		st.changed.close()
		st.changed = nil
	}
	l.logger.Info("verification pass voided", "ns", ns.String(), "why", why)
}

// Observe records one event. Call it for every event, in order, before the
// event is handed to the writers that apply it.
func (l *Live) Observe(ev migration.Event) {
	if ev.Op != migration.OpNoop {
		l.lastChange.Store(time.Now().UnixNano())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen.Before(ev.Pos) {
		l.seen = ev.Pos
	}
	switch ev.Op {
	case migration.OpNoop, migration.OpCreateIndexes, migration.OpDropIndexes:
	case migration.OpInsert, migration.OpUpdate, migration.OpReplace, migration.OpDelete:
		st := l.ns[ev.NS]
		if st == nil || st.changed == nil {
			return // no pass began: the whole namespace is compared later
		}
		id, err := ev.DocumentKey.LookupErr("_id")
		if err != nil {
			l.invalidate(ev.NS, "a change event without _id")
			return
		}
		if err := l.addKey(st, idKey(id)); err != nil {
			l.invalidate(ev.NS, "its changed documents could not be recorded: "+err.Error())
			return
		}
		if st.changed.size() > l.opts.PassLimit {
			l.invalidate(ev.NS, fmt.Sprintf("more than %d documents changed since its pass", l.opts.PassLimit))
		}
	case migration.OpModify:
		l.listed = false
	case migration.OpRename:
		l.listed = false
		l.invalidate(ev.NS, "renamed during the sync")
		l.invalidate(ev.To, "renamed into during the sync")
	case migration.OpDropDatabase, migration.OpInvalidate:
		l.listed = false
		for ns := range l.ns {
			if ev.Op == migration.OpInvalidate || ns.DB == ev.NS.DB {
				l.invalidate(ns, fmt.Sprintf("%s during the sync", ev.Op))
			}
		}
	default: // create, drop and anything unknown
		l.listed = false
		if ev.NS.Coll == "" {
			for ns := range l.ns {
				if ns.DB == ev.NS.DB {
					l.invalidate(ns, fmt.Sprintf("%s during the sync", ev.Op))
				}
			}
			return
		}
		l.invalidate(ev.NS, fmt.Sprintf("%s during the sync", ev.Op))
	}
}

// Run does background comparisons until ctx ends (it returns nil then).
// applied returns the position up to which every observed event is on the
// destination. Errors are logged and retried; they never end Run.
func (l *Live) Run(ctx context.Context, applied func() migration.Position) error {
	for ctx.Err() == nil {
		sctx, stop := context.WithCancel(ctx)
		l.mu.Lock()
		l.stop = stop
		l.mu.Unlock()
		if l.held.Load() {
			stop() // held before the step could be cancelled
		}
		err := l.step(sctx, applied)
		stop()
		if err == nil || ctx.Err() != nil || l.held.Load() {
			if l.held.Load() && ctx.Err() == nil {
				sleep(ctx, time.Second)
			}
			continue
		}
		l.logger.Warn("background verification interrupted; retrying", "err", err)
		l.mu.Lock()
		l.stats.LastError = err.Error()
		l.mu.Unlock()
		sleep(ctx, 5*time.Second)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// step does one unit of work: list the catalog, one pass, or one recheck.
func (l *Live) step(ctx context.Context, applied func() migration.Position) error {
	if l.held.Load() {
		sleep(ctx, time.Second)
		return nil
	}
	if time.Since(l.procChecked) >= sourceCheckEvery {
		l.procChecked = time.Now()
		l.checkSource(ctx)
	}
	l.mu.Lock()
	listed := l.listed
	l.listed = true
	l.mu.Unlock()
	if !listed {
		var cat map[migration.Namespace]collInfo
		err := l.v.retry(ctx, "list namespaces", func(ctx context.Context) error {
			var err error
			cat, err = listNamespaces(ctx, l.v.opts.Source, l.v.scope)
			return err
		})
		if err != nil {
			l.mu.Lock()
			l.listed = false
			l.mu.Unlock()
			return err
		}
		l.mu.Lock()
		for ns, ci := range cat {
			if ci.Type == "collection" {
				l.get(ns)
			}
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	names := slices.SortedFunc(maps.Keys(l.ns), func(a, b migration.Namespace) int { return cmp.Compare(a.String(), b.String()) })
	var pass, recheck *migration.Namespace
	for _, ns := range names {
		st := l.ns[ns]
		switch {
		case !st.done && pass == nil:
			pass = &ns
		case st.done && recheck == nil && st.changed.size() > 0 && time.Since(st.last) >= l.opts.RecheckEvery:
			recheck = &ns
		}
	}
	l.mu.Unlock()
	switch {
	case pass != nil:
		return l.pass(ctx, *pass, applied)
	case recheck != nil:
		return l.recheck(ctx, *recheck, applied)
	}
	sleep(ctx, 500*time.Millisecond)
	return nil
}

// sourceCheckEvery is how often the source process is read to notice a restart.
const sourceCheckEvery = 5 * time.Second

// mark starts recording ns's changes from now on and returns the new
// generation and the position every event observed so far is at or before.
func (l *Live) mark(ns migration.Namespace) (st *liveNS, gen int64, old *keySet, at migration.Position) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st = l.get(ns)
	st.gen++
	old, st.changed = st.changed, newKeySet(l.v.opts.TempDir)
	st.last, st.unsaved, st.dirty = time.Now(), nil, true
	st.busy = st.done // a recheck: its documents are out of the set until it ends
	return st, st.gen, old, l.seen
}

// waitApplied waits until every event observed before the mark is on the
// destination, so a comparison that follows sees each of them applied, and
// any later event is recorded by Observe.
func (l *Live) waitApplied(ctx context.Context, applied func() migration.Position, at migration.Position) error {
	for applied().Before(at) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// pass compares the whole of ns: what differs (in flight, most likely)
// joins the changed set, to be compared again later.
func (l *Live) pass(ctx context.Context, ns migration.Namespace, applied func() migration.Position) error {
	st, gen, old, at := l.mark(ns)
	if old != nil {
		old.close() // the pass compares those documents too
	}
	if err := l.waitApplied(ctx, applied, at); err != nil {
		return err
	}
	began := time.Now()
	var dg [2][]digest
	err := l.v.retry(ctx, "digest "+ns.String(), func(ctx context.Context) error {
		var err error
		dg, err = l.v.digests(ctx, ns)
		return err
	})
	if err != nil {
		return err
	}
	var buckets []int
	var sizes []int64
	var counts [2]int64
	for b := range dg[sideSource] {
		s, d := dg[sideSource][b], dg[sideDestination][b]
		counts[sideSource] += s.Count
		counts[sideDestination] += d.Count
		if s != d {
			buckets, sizes = append(buckets, b), append(sizes, s.Count+d.Count)
		}
	}
	var cands *recordFile
	defer func() {
		if cands != nil {
			cands.close()
		}
	}()
	if len(buckets) > 0 {
		err = l.v.retry(ctx, "compare partitions of "+ns.String(), func(ctx context.Context) error {
			if cands != nil {
				cands.close()
			}
			var err error
			if cands, err = newRecordFile(l.v.opts.TempDir); err != nil {
				return err
			}
			return l.v.diffBuckets(ctx, ns, buckets, sizes, cands)
		})
		if err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.DocumentsCompared += counts[sideSource]
	if st.gen != gen {
		return nil // voided while it ran: the next step starts it again
	}
	if cands != nil {
		if err := cands.each(func(_ byte, key []byte) error { return l.addKey(st, key) }); err != nil {
			l.invalidate(ns, "its changed documents could not be recorded: "+err.Error())
			return err
		}
	}
	st.done, st.why, st.dirty = true, "", true
	st.src, st.dst = counts[sideSource], counts[sideDestination]
	l.stats.Passes++
	var differ int64
	if cands != nil {
		differ = cands.n
	}
	l.logger.Info("background pass done", "ns", ns.String(), "documents", counts[sideSource], "in_flight", differ,
		"took", time.Since(began).Round(time.Millisecond))
	return nil
}

// recheck compares ns's changed documents again: those now equal leave the
// set, those still different (changes in flight) stay.
func (l *Live) recheck(ctx context.Context, ns migration.Namespace, applied func() migration.Position) (err error) {
	st, gen, old, at := l.mark(ns)
	defer old.close()
	kept := false
	keep := func(f *recordFile) error { // back into the set, unless voided meanwhile
		l.mu.Lock()
		defer l.mu.Unlock()
		kept = true
		if st.gen != gen || st.changed == nil || !st.done {
			return nil
		}
		st.busy, st.dirty = false, true
		if err := f.each(func(_ byte, key []byte) error { return l.addKey(st, key) }); err != nil {
			l.invalidate(ns, "its changed documents could not be recorded: "+err.Error())
			return err
		}
		return nil
	}
	defer func() {
		if kept {
			return
		}
		// The documents out for comparison cannot go back: the pass is void.
		l.mu.Lock()
		defer l.mu.Unlock()
		if st.gen == gen {
			l.invalidate(ns, fmt.Sprintf("its changed documents could not be compared: %v", err))
		}
	}()
	cands, err := newRecordFile(l.v.opts.TempDir)
	if err != nil {
		return err
	}
	defer cands.close()
	if err := old.writeTo(cands); err != nil {
		return err
	}
	out, err := newRecordFile(l.v.opts.TempDir)
	if err != nil {
		return errors.Join(err, keep(cands))
	}
	defer out.close()
	if err := l.waitApplied(ctx, applied, at); err != nil {
		return errors.Join(err, keep(cands))
	}
	err = l.v.batches(cands, func(keys [][]byte) error {
		if err := l.pace(ctx); err != nil {
			return err
		}
		return l.v.compareBatch(ctx, ns, keys, out)
	})
	if err != nil {
		return errors.Join(err, keep(cands))
	}
	l.mu.Lock()
	l.stats.Rechecked += cands.n
	l.mu.Unlock()
	return keep(out)
}

// quiet says whether no change event was observed for QuietAfter.
func (l *Live) quiet() bool {
	return time.Since(time.Unix(0, l.lastChange.Load())) >= l.opts.QuietAfter
}

// pace slows background work down while the lag is high, stops it while
// the lag nears the commit threshold (for at most PauseMax at a time when
// the pause does not bring it down) or the commit holds it. On a quiet
// source (LiveOptions.QuietAfter) it neither slows nor pauses.
func (l *Live) pace(ctx context.Context) error {
	lag := l.opts.Lag()
	if !l.held.Load() && (lag < l.opts.SlowLag || l.quiet()) {
		return nil
	}
	began := time.Now()
	l.mu.Lock()
	mayPause := !began.Before(l.noPauseUntil)
	l.mu.Unlock()
	paused, cut := false, false
	for l.held.Load() || mayPause && !l.quiet() && (lag >= l.opts.PauseLag || (paused && lag >= l.opts.SlowLag)) {
		paused = true
		if !l.held.Load() && time.Since(began) >= l.opts.PauseMax {
			cut = true // the lag stayed up without us
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		lag = l.opts.Lag()
	}
	if cut {
		l.logger.Info("background verification goes on slowed: pausing did not lower the lag", "lag", lag, "paused", time.Since(began).Round(time.Second))
	}
	slowFrom := time.Now()
	if !paused || cut {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if paused {
		if !began.Before(l.pausedTo) {
			l.stats.Pauses++ // not a worker joining a pause under way
		}
		l.stats.PausedSeconds += wallTime(&l.pausedTo, began, slowFrom)
	}
	if cut {
		l.stats.PausesCutShort++
		l.noPauseUntil = time.Now().Add(l.opts.PauseMax)
	}
	l.stats.SlowedSeconds += wallTime(&l.slowedTo, slowFrom, time.Now())
	return nil
}

// wallTime returns the seconds of [from, to] after *counted, the end of
// the time counted so far, and moves that end to to: the parallel
// workers' intervals, recorded as each ends, add up to their union.
func wallTime(counted *time.Time, from, to time.Time) float64 {
	if from.Before(*counted) {
		from = *counted
	}
	if !to.After(from) {
		return 0
	}
	*counted = to
	return to.Sub(from).Seconds()
}

// Commit compares, with writes to the source stopped and every change
// applied, what the background work has not: in every namespace with a
// valid pass the documents changed since they were compared, and in full
// every other namespace on either side. With repair it repairs what
// differs. Call it after Run returned.
func (l *Live) Commit(ctx context.Context, repair bool) (*Report, *Coverage, error) {
	opts := l.opts.Options
	opts.Repair = repair
	// Writes are stopped and everything is applied: one quick recheck
	// guards against a read racing the last write.
	opts.Rechecks, opts.RecheckBackoff = 1, 100*time.Millisecond
	v, err := New(opts, l.base)
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{Strategy: StrategyHash, IgnoreFieldOrder: opts.IgnoreFieldOrder, StartedAt: time.Now().UTC()}
	var cat [2]map[migration.Namespace]collInfo
	err = v.sides(ctx, func(ctx context.Context, side int, c *mongo.Client) error {
		return v.retry(ctx, "list namespaces", func(ctx context.Context) error {
			var err error
			if cat[side], err = listNamespaces(ctx, c, v.scope); err != nil {
				return fmt.Errorf("%s: %w", sideName(side), err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("verify: %w", err)
	}
	all := map[migration.Namespace]bool{}
	for side := range cat {
		for ns := range cat[side] {
			all[ns] = true
		}
	}
	names := slices.SortedFunc(maps.Keys(all), func(a, b migration.Namespace) int { return cmp.Compare(a.String(), b.String()) })
	cov := &Coverage{Namespaces: len(names)}
	plans := make([]*target, len(names))
	l.mu.Lock()
	for i, ns := range names {
		st := l.ns[ns]
		switch {
		case st != nil && st.done:
			plans[i] = &target{keys: st.changed, src: st.src, dst: st.dst}
			cov.ByPass++
			cov.DocumentsRechecked += st.changed.size()
		case st != nil:
			cov.InFull = append(cov.InFull, NamespaceReason{Namespace: ns.String(), Reason: st.why})
		case cat[sideSource][ns].Type != "collection" && cat[sideSource][ns].Type != "":
			cov.InFull = append(cov.InFull, NamespaceReason{Namespace: ns.String(), Reason: "a " + cat[sideSource][ns].Type + ": catalog only"})
		default:
			cov.InFull = append(cov.InFull, NamespaceReason{Namespace: ns.String(), Reason: "not compared during the sync"})
		}
	}
	l.mu.Unlock()

	rep.Namespaces = make([]NamespaceResult, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for i, ns := range names {
		var s, d *collInfo
		if ci, ok := cat[sideSource][ns]; ok {
			s = &ci
		}
		if ci, ok := cat[sideDestination][ns]; ok {
			d = &ci
		}
		g.Go(func() error {
			t := plans[i]
			if t == nil && s != nil && d != nil && s.Type == "collection" && d.Type == "collection" {
				l.logger.Info("comparing in full at commit", "ns", ns.String())
			}
			res, err := v.namespace(gctx, nil, ns, s, d, nsProgress{}, t)
			if err != nil {
				return fmt.Errorf("verify %s: %w", ns, err)
			}
			rep.Namespaces[i] = res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	rep.total()
	rep.FinishedAt = time.Now().UTC()
	cov.Complete = true
	return rep, cov, nil
}

// target is what the commit compares of a namespace whose background pass
// held: the documents changed since they were compared. src and dst are the
// pass's document counts, which the result's counts start from.
type target struct {
	keys     *keySet
	src, dst int64
}

// targeted compares only the documents of t.
func (v *Verifier) targeted(ctx context.Context, ns migration.Namespace, res *NamespaceResult, t *target) error {
	res.Source.Count, res.Destination.Count, res.Matched = t.src, t.dst, t.src
	keys := t.keys
	if keys.size() == 0 {
		return nil
	}
	cands, err := newRecordFile(v.opts.TempDir)
	if err != nil {
		return err
	}
	defer cands.close()
	if err := keys.writeTo(cands); err != nil {
		return err
	}
	method := "in"
	if cands.n <= int64(v.opts.InBatch) { // one batch: its plan is the plan
		var all [][]byte
		if err := cands.each(func(_ byte, k []byte) error { all = append(all, append([]byte(nil), k...)); return nil }); err != nil {
			return err
		}
		method = v.lookupMethod(all)
	}
	v.logger.Info("comparing changed documents", "ns", ns.String(), "documents", cands.n, "lookup", method)
	return v.settle(ctx, ns, cands, res)
}

// keySet is a set of _id keys: in memory up to a limit, then appended to a
// spill file (which may hold duplicates; writeTo removes them).
type keySet struct {
	dir   string
	mem   map[string]struct{}
	spill *recordFile
}

func newKeySet(dir string) *keySet { return &keySet{dir: dir, mem: map[string]struct{}{}} }

// size is how many keys it holds (spilled duplicates counted).
func (k *keySet) size() int64 {
	if k == nil {
		return 0
	}
	n := int64(len(k.mem))
	if k.spill != nil {
		n += k.spill.n
	}
	return n
}

func (k *keySet) add(key []byte, limit int) error {
	k.mem[string(key)] = struct{}{}
	if len(k.mem) < limit {
		return nil
	}
	if k.spill == nil {
		f, err := newRecordFile(k.dir)
		if err != nil {
			return err
		}
		k.spill = f
	}
	for key := range k.mem {
		if err := k.spill.write(0, []byte(key)); err != nil {
			return err
		}
	}
	clear(k.mem)
	return nil
}

// writeTo appends every key once to out.
func (k *keySet) writeTo(out *recordFile) error {
	var seen map[[16]byte]struct{}
	if k.spill != nil {
		seen = map[[16]byte]struct{}{}
		err := k.spill.each(func(_ byte, key []byte) error {
			if _, ok := k.mem[string(key)]; ok {
				return nil
			}
			h := sha256.Sum256(key)
			var s [16]byte
			copy(s[:], h[:16])
			if _, ok := seen[s]; ok {
				return nil
			}
			seen[s] = struct{}{}
			return out.write(0, key)
		})
		if err != nil {
			return err
		}
	}
	for key := range k.mem {
		if err := out.write(0, []byte(key)); err != nil {
			return err
		}
	}
	return nil
}

func (k *keySet) close() {
	if k != nil && k.spill != nil {
		k.spill.close()
		k.spill = nil
	}
}
