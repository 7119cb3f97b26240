package engine

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/clone"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// copyPhase creates the in-scope collections on the destination, copies
// their documents and builds each one's indexes right after its data, then
// creates the views. Namespaces the checkpoint marks indexed or skipped are
// left alone; one marked copied only gets its indexes; pending and copying
// ones are copied from scratch (docs/design/resume.md).
func (e *Engine) copyPhase(ctx context.Context, colls []catalog.Collection, copyDone bool) error {
	e.updateProgress(func(p *migration.Progress) { p.Phase = migration.PhaseCopying })
	planBegan := time.Now()
	states, err := e.store.Collections(ctx)
	if err != nil {
		return err
	}
	var (
		views     []catalog.Collection
		toCopy    []catalog.Collection
		indexOnly []catalog.Collection
		refusals  []catalog.Refusal
	)
	samples := map[migration.Namespace]catalog.Sample{}
	// alongside are the new namespaces estimated while they are copied.
	var alongside map[migration.Namespace]<-chan sampled
	if !copyDone {
		if e.estimateAlongside(colls, states) {
			ectx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			alongside = e.startEstimates(ectx, &wg, colls, states, e.indexesFirstUpTo > 0)
		} else {
			planned, err := e.planNew(ctx, colls, states, samples)
			if err != nil {
				return err
			}
			maps.Copy(states, planned)
		}
	}
	// Every namespace's estimate is in the progress before the first
	// create, so the first progress line has the whole total.
	var planned []checkpoint.Collection
	for _, c := range colls {
		if st, ok := states[c.NS]; ok && c.Kind != catalog.KindView {
			planned = append(planned, st)
		}
	}
	e.addNamespaces(planned...)
	byNS := map[migration.Namespace]catalog.Collection{}
	var mu sync.Mutex // guards fresh, first and firstBuilt
	// fresh are the namespaces just created empty: the first attempt of
	// each needs no second drop and create.
	fresh := map[migration.Namespace]bool{}
	// first are the namespaces whose indexes are built before their
	// documents (indexesFirst), firstBuilt those for which an attempt built
	// them and how long it took: they are counted in the progress (and
	// their refusals handled) once, though every attempt builds them again
	// on the re-created namespace.
	first := map[migration.Namespace]bool{}
	firstBuilt := map[migration.Namespace]time.Duration{}
	for _, c := range colls {
		if c.Kind == catalog.KindView {
			views = append(views, c)
			continue
		}
		byNS[c.NS] = c
		st, ok := states[c.NS]
		if !ok {
			continue // created on the source after the copy: change application's business
		}
		switch st.State {
		case migration.CopyIndexed, migration.CopySkipped:
		case migration.CopyDone:
			indexOnly = append(indexOnly, c)
		case migration.CopyPending, migration.CopyRunning:
			// Create up front so every refusal is known before any copy.
			done := e.step("create", "ns", c.NS.String())
			r, err := e.recreate(ctx, c)
			done()
			if err != nil {
				return err
			}
			if r != nil {
				refusals = append(refusals, *r)
				continue
			}
			toCopy = append(toCopy, c)
			fresh[c.NS] = true
		}
	}
	if err := e.handleRefusals(ctx, refusals, true); err != nil {
		return err
	}
	for _, c := range indexOnly {
		if err := e.finishIndexes(ctx, c.NS); err != nil {
			return err
		}
	}

	tasks := make([]clone.Task, 0, len(toCopy))
	for _, c := range toCopy {
		docs, bytes := e.estimateOf(c.NS)
		t := clone.Task{NS: c.NS, EstimatedBytes: bytes, Ordered: c.Capped(),
			FirstBatch: clone.FirstBatchOfSample(samples[c.NS].Documents, samples[c.NS].Largest)}
		ch, ok := alongside[c.NS]
		if !ok {
			first[c.NS] = e.indexesFirst(docs)
		} else {
			t.Prepare = func(ctx context.Context) (int, error) {
				select {
				case r := <-ch:
					mu.Lock()
					first[c.NS] = e.indexesFirst(r.docs)
					mu.Unlock()
					return clone.FirstBatchOfSample(r.s.Documents, r.s.Largest), r.err
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
		}
		tasks = append(tasks, t)
	}
	indexes := "after the documents"
	if e.indexesFirstUpTo > 0 {
		indexes = fmt.Sprintf("before the documents up to %d documents", e.indexesFirstUpTo)
	}
	e.logger.Info("copy planned", "namespaces", len(tasks), "estimated_alongside", len(alongside), "scan", e.scan,
		"indexes", indexes, "took", time.Since(planBegan).Round(time.Millisecond))
	e.startCopyClock()
	copyOpts := e.opts.Copy
	copyOpts.Scan = e.scan
	copier := clone.New(e.src, e.dst, copyOpts, e.base)
	err = copier.CopyAll(ctx, tasks, clone.Hooks{
		Begin: func(ctx context.Context, t clone.Task) error {
			defer e.step("begin", "ns", t.NS.String())()
			mu.Lock()
			created, ixFirst := fresh[t.NS], first[t.NS]
			_, counted := firstBuilt[t.NS]
			delete(fresh, t.NS)
			mu.Unlock()
			if !created {
				if r, err := e.recreate(ctx, byNS[t.NS]); err != nil {
					return err
				} else if r != nil {
					return fmt.Errorf("re-create %s: %s", t.NS, r.Reason)
				}
			}
			if ixFirst {
				began := time.Now()
				ixs, err := catalog.ListIndexes(ctx, e.src, t.NS)
				if err != nil {
					return err
				}
				refusals, err := e.createIndexes(ctx, t.NS, ixs, nil)
				if err != nil {
					return err
				}
				if !counted { // the first attempt whose indexes were all built or refused
					e.updateProgress(func(p *migration.Progress) {
						p.IndexBuilding.Total += len(ixs)
						p.IndexBuilding.Built += len(ixs) - len(refusals)
					})
					if err := e.handleRefusals(ctx, refusals, false); err != nil {
						return err
					}
				}
				mu.Lock()
				firstBuilt[t.NS] = time.Since(began)
				mu.Unlock()
			}
			e.setNamespace(t.NS, migration.CopyRunning, 0, 0)
			return e.store.SetCollection(ctx, e.checkpointOf(t.NS))
		},
		Progress: e.addCopied,
		Done: func(ctx context.Context, t clone.Task, r clone.Result) error {
			mu.Lock()
			ixFirst, ixTook := first[t.NS], firstBuilt[t.NS]
			mu.Unlock()
			state := migration.CopyDone
			if ixFirst {
				state = migration.CopyIndexed
			}
			e.setNamespace(t.NS, state, r.Documents, r.Bytes)
			done := e.step("checkpoint copied", "ns", t.NS.String())
			err := e.store.SetCollection(ctx, e.checkpointOf(t.NS))
			done()
			if err != nil {
				return err
			}
			e.logger.Info("collection copied", "ns", t.NS.String(), "documents", r.Documents, "bytes", r.Bytes, "took", r.Took.Round(time.Millisecond),
				"reading", r.Reading.Round(time.Millisecond), "queueing", r.Queueing.Round(time.Millisecond), "inserting", r.Inserting.Round(time.Millisecond),
				"first_batches", r.FirstBatches.Round(time.Millisecond))
			if !ixFirst {
				began := time.Now()
				if err := e.finishIndexes(ctx, t.NS); err != nil {
					return err
				}
				ixTook = time.Since(began)
			}
			e.logger.Info("collection indexed", "ns", t.NS.String(), "took", ixTook.Round(time.Millisecond), "before_documents", ixFirst)
			return nil
		},
	})
	if err != nil {
		return err
	}
	return e.createViews(ctx, views, states)
}

// countWait is how long a copy that needs its namespace's count
// (startEstimates) waits for it after the sample. On FerretDB the count
// walks the table: 0.04 s at 10,000 documents of 1.2 KB, alone on an idle
// server; four at once at 100,000 delayed the first reads by 1.7 s. A count
// that takes longer is a table too large to gain from indexes first.
const countWait = 250 * time.Millisecond

// sampled is what a namespace's sample found, or why it could not be read,
// and, when the copy waits for it (startEstimates), its document count (0
// when the count failed or came too late).
type sampled struct {
	s    catalog.Sample
	err  error
	docs int64
}

// estimateAlongside reports whether the new namespaces are estimated while
// they are copied rather than before the first read: when every namespace
// to copy gets a worker at once, the estimates cannot change the order
// (largest first), and they only delay the reads — on FerretDB the count
// ($collStats) walks every page of the table.
func (e *Engine) estimateAlongside(colls []catalog.Collection, states map[migration.Namespace]checkpoint.Collection) bool {
	workers := e.opts.Copy.Workers
	if workers <= 0 {
		workers = 4 // clone's default
	}
	toCopy, fresh := 0, 0
	for _, c := range colls {
		if c.Kind == catalog.KindView {
			continue
		}
		st, ok := states[c.NS]
		switch {
		case !ok:
			toCopy++
			fresh++
		case st.State == migration.CopyPending || st.State == migration.CopyRunning:
			toCopy++
		}
	}
	return fresh > 0 && toCopy <= workers
}

// startEstimates plans every new namespace of colls as pending (in states;
// the checkpoint records it when its copy begins) and estimates each in a
// goroutine of wg: its sample and its count at once. The sample is sent on
// the namespace's channel (its copy's first batch waits for it:
// Task.Prepare) as soon as it is read, and the count runs alongside the
// copy — unless waitCount, when the copy needs the count to choose when to
// build the indexes: then both are sent once the count is in, or without it
// (indexes after the documents) when it takes over e.countWait. Snapshots
// have no total until the last estimate is in (setEstimate). A count that
// fails only leaves that namespace's estimate to follow its copy.
func (e *Engine) startEstimates(ctx context.Context, wg *sync.WaitGroup, colls []catalog.Collection, states map[migration.Namespace]checkpoint.Collection, waitCount bool) map[migration.Namespace]<-chan sampled {
	chans := map[migration.Namespace]chan sampled{}
	var pending []checkpoint.Collection
	for _, c := range colls {
		if _, ok := states[c.NS]; ok || c.Kind == catalog.KindView {
			continue
		}
		states[c.NS] = checkpoint.Collection{NS: c.NS, State: migration.CopyPending}
		chans[c.NS] = make(chan sampled, 1)
		pending = append(pending, states[c.NS])
	}
	e.updateProgress(func(*migration.Progress) { e.estimating += len(chans) })
	e.addNamespaces(pending...) // before any estimate is in
	out := map[migration.Namespace]<-chan sampled{}
	for ns, ch := range chans {
		out[ns] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			var docs, serverBytes int64
			var countErr error
			counted := make(chan struct{})
			go func() {
				defer close(counted)
				docs, serverBytes, countErr = catalog.Count(ctx, e.src, ns)
			}()
			s, err := catalog.SampleOf(ctx, e.src, ns)
			sent := err != nil || !waitCount
			if sent {
				ch <- sampled{s: s, err: err}
			} else {
				// A count that takes long is a large collection's.
				wait := time.NewTimer(e.countWait)
				select {
				case <-counted:
				case <-wait.C:
					ch <- sampled{s: s}
					sent = true
				}
				wait.Stop()
			}
			<-counted
			if err != nil {
				e.setEstimate(ns, 0, 0, false)
				return
			}
			if countErr != nil && ctx.Err() == nil {
				e.logger.Warn("estimate failed; the namespace's progress follows its copy", "ns", ns.String(), "err", countErr)
			}
			e.setEstimate(ns, docs, s.EstimateBytes(docs, serverBytes), countErr == nil)
			if !sent {
				r := sampled{s: s}
				if countErr == nil {
					r.docs = docs
				}
				ch <- r
			}
			e.logger.Debug("step", "step", "estimate alongside the copy", "ns", ns.String(), "took", time.Since(began).Round(time.Microsecond))
		}()
	}
	return out
}

// planNew estimates the collections of colls that have no stored state and
// records them as pending, with what their samples found in samples (the
// first batch of their copy). On FerretDB collStats walks the whole table, so
// the estimates run concurrently (as many as the copy has workers) instead of
// one after another before the first document is read.
func (e *Engine) planNew(ctx context.Context, colls []catalog.Collection, states map[migration.Namespace]checkpoint.Collection, samples map[migration.Namespace]catalog.Sample) (map[migration.Namespace]checkpoint.Collection, error) {
	defer e.step("estimate new namespaces")()
	var mu sync.Mutex
	planned := map[migration.Namespace]checkpoint.Collection{}
	g, ctx := errgroup.WithContext(ctx)
	workers := e.opts.Copy.Workers
	if workers <= 0 {
		workers = 4 // clone's default
	}
	g.SetLimit(workers)
	for _, c := range colls {
		if _, ok := states[c.NS]; ok || c.Kind == catalog.KindView {
			continue
		}
		g.Go(func() error {
			docs, bytes, sample, err := catalog.EstimateWithSample(ctx, e.src, c.NS)
			if err != nil {
				return err
			}
			st := checkpoint.Collection{NS: c.NS, State: migration.CopyPending, EstimatedDocuments: docs, EstimatedBytes: bytes}
			if err := e.store.SetCollection(ctx, st); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			planned[c.NS] = st
			samples[c.NS] = sample
			return nil
		})
	}
	return planned, g.Wait()
}

// recreate drops ns on the destination and creates it with the source's
// options, so an attempt starts from an empty namespace.
func (e *Engine) recreate(ctx context.Context, c catalog.Collection) (*catalog.Refusal, error) {
	if err := catalog.Drop(ctx, e.dst, c.NS); err != nil {
		return nil, err
	}
	return catalog.Create(ctx, e.dst, c)
}

// indexesFirst reports whether a collection of docs estimated documents
// gets its secondary indexes before its documents (Options.IndexesFirstUpTo,
// mdb.Storage.IndexesFirstUpTo). No estimate (0) means after them: an empty
// collection's index builds cost nothing either way, a collection of
// unknown size may be large.
func (e *Engine) indexesFirst(docs int64) bool {
	return docs > 0 && docs <= e.indexesFirstUpTo
}

// finishIndexes builds the secondary indexes of ns after its documents and
// marks it indexed.
func (e *Engine) finishIndexes(ctx context.Context, ns migration.Namespace) error {
	e.updateProgress(func(p *migration.Progress) { p.Phase = migration.PhaseIndexing })
	defer e.updateProgress(func(p *migration.Progress) { p.Phase = migration.PhaseCopying })
	ixs, err := catalog.ListIndexes(ctx, e.src, ns)
	if err != nil {
		return err
	}
	e.updateProgress(func(p *migration.Progress) { p.IndexBuilding.Total += len(ixs) })
	refusals, err := e.createIndexes(ctx, ns, ixs, func() { e.updateProgress(func(p *migration.Progress) { p.IndexBuilding.Built++ }) })
	if err != nil {
		return err
	}
	if err := e.handleRefusals(ctx, refusals, false); err != nil {
		return err
	}
	e.setNamespace(ns, migration.CopyIndexed, -1, -1)
	return e.store.SetCollection(ctx, e.checkpointOf(ns))
}

// createIndexes creates the secondary indexes ixs of ns on the destination,
// unique ones relaxed and recorded for the commit to restore, calling built
// (when not nil) after each. It returns the ones the destination refused.
func (e *Engine) createIndexes(ctx context.Context, ns migration.Namespace, ixs []catalog.Index, built func()) ([]catalog.Refusal, error) {
	var refusals []catalog.Refusal
	for _, ix := range ixs {
		r, err := catalog.CreateIndex(ctx, e.dst, ns, ix.Name, ix.Relaxed())
		if err != nil {
			return nil, err
		}
		if r != nil {
			refusals = append(refusals, *r)
			continue
		}
		if ix.Unique() {
			err := e.store.AddRelaxed(ctx, checkpoint.RelaxedIndex{NS: ns, Name: ix.Name, Spec: ix.Spec})
			if err != nil {
				return nil, err
			}
		}
		if built != nil {
			built()
		}
	}
	return refusals, nil
}

// createViews creates views after every base collection exists.
func (e *Engine) createViews(ctx context.Context, views []catalog.Collection, states map[migration.Namespace]checkpoint.Collection) error {
	var refusals []catalog.Refusal
	for _, v := range views {
		if st, ok := states[v.NS]; ok && (st.State == migration.CopyIndexed || st.State == migration.CopySkipped) {
			continue
		}
		r, err := catalog.Create(ctx, e.dst, v)
		if err != nil {
			return err
		}
		if r != nil {
			refusals = append(refusals, *r)
			continue
		}
		if err := e.store.SetCollection(ctx, checkpoint.Collection{NS: v.NS, State: migration.CopyIndexed}); err != nil {
			return err
		}
	}
	return e.handleRefusals(ctx, refusals, true)
}

// handleRefusals applies the refusal policy: fail with every refusal listed,
// or record each as a warning (and, for namespaces, mark them skipped).
func (e *Engine) handleRefusals(ctx context.Context, rs []catalog.Refusal, namespaces bool) error {
	if len(rs) == 0 {
		return nil
	}
	e.updateProgress(func(p *migration.Progress) {
		if !namespaces {
			p.IndexBuilding.Refused += len(rs)
		}
	})
	if e.opts.RefusalPolicy != catalog.PolicySkip {
		return &catalog.RefusedError{Refusals: rs}
	}
	for _, r := range rs {
		e.logger.Warn("skipped what the destination refused", "ns", r.NS.String(), "kind", r.Kind, "name", r.Name, "reason", r.Reason)
		e.updateProgress(func(p *migration.Progress) { p.Warnings = append(p.Warnings, "skipped: "+r.String()) })
		if namespaces {
			e.setNamespace(r.NS, migration.CopySkipped, 0, 0)
			st := e.checkpointOf(r.NS)
			st.NS, st.State, st.Refusal = r.NS, migration.CopySkipped, r.Reason
			if err := e.store.SetCollection(ctx, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreUniqueIndexes turns every relaxed unique index back into a unique
// one (docs/design/indexes.md). It is idempotent; commit.go calls it once
// the commit point is drained.
func (e *Engine) restoreUniqueIndexes(ctx context.Context) error {
	list, err := e.store.Relaxed(ctx)
	if err != nil {
		return err
	}
	for _, r := range list {
		if r.Restored {
			continue
		}
		if err := catalog.RestoreUnique(ctx, e.dst, r.NS, catalog.Index{Name: r.Name, Spec: r.Spec}); err != nil {
			return err
		}
		if err := e.store.MarkRestored(ctx, r); err != nil {
			return err
		}
		e.logger.Info("unique index restored", "ns", r.NS.String(), "index", r.Name)
	}
	return nil
}
