package engine

import (
	"slices"
	"time"

	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/clone"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Progress returns a snapshot of the run. It is safe for concurrent use.
func (e *Engine) Progress() migration.Progress {
	p := e.snapshot()
	p.Background = e.backgroundProgress()
	return p
}

// snapshot copies the progress under its mutex.
func (e *Engine) snapshot() migration.Progress {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.prog
	p.Namespaces = slices.Clone(p.Namespaces)
	p.Warnings = slices.Clone(p.Warnings)
	cc := &p.CollectionCopy
	cc.ETASeconds = -1
	if e.estimating > 0 {
		// Part of a total is no total: it appears when the last estimate does.
		cc.EstimatedTotalBytes, cc.EstimatedTotalDocuments = 0, 0
	}
	if !e.copyStarted.IsZero() {
		if secs := time.Since(e.copyStarted).Seconds(); secs > 0 {
			cc.BytesPerSecond = float64(cc.EstimatedCopiedBytes-e.copyBase) / secs
		}
		if cc.BytesPerSecond > 0 && e.estimating == 0 {
			cc.ETASeconds = int64(float64(max(cc.EstimatedTotalBytes-cc.EstimatedCopiedBytes, 0)) / cc.BytesPerSecond)
		}
	}
	if cc.CollectionsCopied == cc.CollectionsTotal {
		cc.ETASeconds = 0
	}
	p.UpdatedAt = time.Now()
	return p
}

// backgroundProgress is the continuous verifier's share and coverage; nil
// without one.
func (e *Engine) backgroundProgress() *migration.BackgroundVerification {
	e.cdc.mu.Lock()
	live := e.cdc.live
	e.cdc.mu.Unlock()
	if live == nil {
		return nil
	}
	st, cov := live.Stats(), live.Coverage()
	return &migration.BackgroundVerification{
		NamespacesVerified: cov.Verified, Namespaces: cov.Namespaces, DocumentsToRecheck: cov.ToRecheck,
		DocumentsCompared: st.DocumentsCompared, Passes: st.Passes, PassesInvalidated: st.PassesInvalidated,
		DocumentsRechecked: st.Rechecked, Pauses: st.Pauses, PausedSeconds: st.PausedSeconds, SlowedSeconds: st.SlowedSeconds, LastError: st.LastError,
	}
}

// updateProgress changes the progress snapshot under its mutex.
func (e *Engine) updateProgress(f func(p *migration.Progress)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(&e.prog)
}

func (e *Engine) startCopyClock() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.copyStarted = time.Now()
	e.copyBase = e.prog.CollectionCopy.EstimatedCopiedBytes
}

// addNamespaces adds planned namespaces with their stored states, all at
// once: no snapshot holds part of the total.
func (e *Engine) addNamespaces(sts ...checkpoint.Collection) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, st := range sts {
		if _, ok := e.nsIx[st.NS]; ok {
			continue
		}
		e.nsIx[st.NS] = len(e.prog.Namespaces)
		e.prog.Namespaces = append(e.prog.Namespaces, migration.NamespaceProgress{
			NS: st.NS, EstimatedBytes: st.EstimatedBytes, EstimatedDocuments: st.EstimatedDocuments,
		})
		cc := &e.prog.CollectionCopy
		cc.CollectionsTotal++
		cc.EstimatedTotalBytes += st.EstimatedBytes
		cc.EstimatedTotalDocuments += st.EstimatedDocuments
		e.setCountsLocked(st.NS, st.State, st.CopiedDocuments, st.CopiedBytes)
	}
}

// setEstimate sets the estimate of ns, made while it is being copied
// (copy.go), and counts one estimate done; a namespace already copied keeps
// its exact counts.
func (e *Engine) setEstimate(ns migration.Namespace, docs, bytes int64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.estimating--
	i, found := e.nsIx[ns]
	if !ok || !found {
		return
	}
	n := &e.prog.Namespaces[i]
	if n.State == migration.CopyDone || n.State == migration.CopyIndexed || n.State == migration.CopySkipped {
		return
	}
	cc := &e.prog.CollectionCopy
	cc.EstimatedTotalDocuments += docs - n.EstimatedDocuments
	cc.EstimatedTotalBytes += bytes - n.EstimatedBytes
	n.EstimatedDocuments, n.EstimatedBytes = docs, bytes
	e.addCountsLocked(n, 0, 0) // what was copied already bounds it
}

// setNamespace sets ns's state and absolute counts (-1 keeps a count).
func (e *Engine) setNamespace(ns migration.Namespace, s migration.CopyState, docs, bytes int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setCountsLocked(ns, s, docs, bytes)
}

func (e *Engine) setCountsLocked(ns migration.Namespace, s migration.CopyState, docs, bytes int64) {
	i, ok := e.nsIx[ns]
	if !ok {
		return
	}
	n := &e.prog.Namespaces[i]
	done := func(s migration.CopyState) bool {
		return s == migration.CopyDone || s == migration.CopyIndexed || s == migration.CopySkipped
	}
	if done(n.State) {
		e.prog.CollectionCopy.CollectionsCopied--
	}
	if docs < 0 {
		docs = n.CopiedDocuments
	}
	if bytes < 0 {
		bytes = n.CopiedBytes
	}
	e.addCountsLocked(n, docs-n.CopiedDocuments, bytes-n.CopiedBytes)
	n.State = s
	if done(s) {
		e.prog.CollectionCopy.CollectionsCopied++
		// The copy is exact once done: the estimate becomes the count.
		e.prog.CollectionCopy.EstimatedTotalBytes += n.CopiedBytes - n.EstimatedBytes
		e.prog.CollectionCopy.EstimatedTotalDocuments += n.CopiedDocuments - n.EstimatedDocuments
		n.EstimatedBytes, n.EstimatedDocuments = n.CopiedBytes, n.CopiedDocuments
	}
}

// addCopied counts one inserted batch.
func (e *Engine) addCopied(t clone.Task, docs, bytes int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i, ok := e.nsIx[t.NS]; ok {
		e.addCountsLocked(&e.prog.Namespaces[i], docs, bytes)
	}
}

func (e *Engine) addCountsLocked(n *migration.NamespaceProgress, docs, bytes int64) {
	n.CopiedDocuments += docs
	n.CopiedBytes += bytes
	cc := &e.prog.CollectionCopy
	cc.CopiedDocuments += docs
	cc.EstimatedCopiedBytes += bytes
	// An estimate that falls short grows with the copy (never above 100 %).
	if n.CopiedDocuments > n.EstimatedDocuments {
		cc.EstimatedTotalDocuments += n.CopiedDocuments - n.EstimatedDocuments
		n.EstimatedDocuments = n.CopiedDocuments
	}
	// The document count estimate is the better one: servers' size figures
	// need not be BSON bytes (FerretDB's were ~3x the bytes copied), so the
	// byte estimate follows the mean size of the documents copied so far.
	est := n.EstimatedBytes
	if n.CopiedDocuments > 0 {
		est = n.CopiedBytes * n.EstimatedDocuments / n.CopiedDocuments
	}
	est = max(est, n.CopiedBytes)
	cc.EstimatedTotalBytes += est - n.EstimatedBytes
	n.EstimatedBytes = est
}

// estimateOf is the estimated documents and bytes of ns (zeros when it is
// not in the progress).
func (e *Engine) estimateOf(ns migration.Namespace) (docs, bytes int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i, ok := e.nsIx[ns]; ok {
		return e.prog.Namespaces[i].EstimatedDocuments, e.prog.Namespaces[i].EstimatedBytes
	}
	return 0, 0
}

// checkpointOf is the stored form of ns's progress.
func (e *Engine) checkpointOf(ns migration.Namespace) checkpoint.Collection {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.nsIx[ns]
	if !ok {
		return checkpoint.Collection{NS: ns}
	}
	n := e.prog.Namespaces[i]
	return checkpoint.Collection{NS: ns, State: n.State, EstimatedDocuments: n.EstimatedDocuments, EstimatedBytes: n.EstimatedBytes,
		CopiedDocuments: n.CopiedDocuments, CopiedBytes: n.CopiedBytes}
}
