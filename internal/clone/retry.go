package clone

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// readError is a failure of the source cursor (as opposed to an insert into
// the destination or Hooks.Begin).
type readError struct{ err error }

func (e *readError) Error() string { return "read from the source: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// CopyError is how the copy of one namespace ended for good. Its message
// names the namespace, the root cause and what to do.
type CopyError struct {
	NS       migration.Namespace
	Attempts int
	// Deterministic: the same failure at the same place ended several
	// attempts in a row; trying again as is will not help.
	Deterministic bool
	// At is the number of source documents read when the last attempt
	// failed.
	At int64
	// Cause is the root cause: the failure of this namespace, or, for a lost
	// cursor, the failure elsewhere that closed its connection, if known.
	Cause error
	// Hint says what to do.
	Hint string
}

func (e *CopyError) Error() string {
	how := fmt.Sprintf("after %d attempts", e.Attempts)
	if e.Attempts == 1 {
		how = "on the first attempt"
	}
	if e.Deterministic {
		how = fmt.Sprintf("the same way at document %d in each of %d attempts (a deterministic failure, not a transient one)", e.At, e.Attempts)
	}
	return fmt.Sprintf("copy %s failed %s: %v; %s", e.NS, how, e.Cause, e.Hint)
}

func (e *CopyError) Unwrap() error { return e.Cause }

const resumeHint = "then run the same command again: the run resumes from its checkpoint"

// failure is what tells one failed attempt from another.
type failure struct {
	class string
	at    int64
}

// copyTask copies t until an attempt succeeds. An attempt that fails with
// an error after which starting again can help (mdb.IsRestartable) is
// followed by another, after a backoff bounded by Options.Retry, from an
// empty namespace (Hooks.Begin). A reply too large for the driver makes
// the batches smaller at that place first (mdb.BatchSizer.TooLarge). It
// stops with a *CopyError when the error is of another kind, when
// Options.SameFailures attempts in a row fail the same way at the same
// document after reading some, or when no attempt has made progress for
// Retry.MaxElapsed.
func (c *Copier) copyTask(ctx context.Context, t Task, h Hooks) (Result, error) {
	if t.Prepare != nil {
		n, err := t.Prepare(ctx)
		if err != nil {
			return Result{}, err
		}
		if n > 0 {
			t.FirstBatch = n
		}
	}
	first := c.opts.FirstBatch
	if first <= 0 && t.FirstBatch > 0 {
		first = t.FirstBatch
		c.logger.Debug("first batch sized from the sample", "ns", t.NS.String(), "first_batch", first)
	}
	sizer := mdb.NewBatchSizer(mdb.SizerOptions{MaxDocs: c.opts.BatchDocuments, FirstDocs: first})
	var last failure
	same := 0
	delay := c.opts.Retry.Initial
	progressAt := time.Now()
	var best int64 // most documents one attempt read
	for attempt := 1; ; attempt++ {
		var res Result
		var read int64
		err := h.Begin(ctx, t)
		if err == nil {
			res, read, err = c.copyOnce(ctx, t, sizer, h.Progress)
		}
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		ce := &CopyError{NS: t.NS, Attempts: attempt, At: read, Cause: err}
		var re *readError
		fromSource := errors.As(err, &re)
		if fromSource && (mdb.IsReplyTooLarge(err) || mdb.IsTransient(err)) {
			c.noteConnLoss(t.NS, err) // the driver closes the connection, and FerretDB its cursors
		}
		if fromSource && mdb.IsReplyTooLarge(err) {
			if !sizer.TooLarge() {
				ce.Deterministic = true
				ce.Hint = "the server sent a reply over the driver's 48 MB limit for a batch of one document, which no document can fill: check the source server's logs and version, " + resumeHint
				return res, ce
			}
			c.logger.Warn("reply too large for the driver; copying the namespace again with smaller batches",
				"ns", t.NS.String(), "attempt", attempt, "documents", read, "batch_size", sizer.Size())
			continue // the sizer changed: no backoff, and not the same attempt again
		}
		if !mdb.IsRestartable(err) {
			ce.Hint = hintFor(err, fromSource)
			return res, ce
		}
		if read > best {
			best, progressAt = read, time.Now()
		}
		f := failure{class: mdb.Class(err), at: read}
		switch {
		case mdb.IsCursorLost(err) && c.lossElsewhere(t.NS) != nil:
			// Another namespace's failure closed the connection under this
			// cursor: however often that happens, it says nothing about
			// this namespace.
			last, same = failure{}, 0
		case f == last && read > 0:
			same++
		default:
			last, same = f, 1
		}
		if same >= c.opts.SameFailures {
			ce.Deterministic = true
			ce.Cause = c.rootCause(t.NS, err)
			ce.Hint = deterministicHint(err)
			return res, ce
		}
		if time.Since(progressAt) > c.opts.Retry.MaxElapsed {
			ce.Cause = c.rootCause(t.NS, err)
			ce.Hint = fmt.Sprintf("no attempt got further for %s: when the source and destination are reachable again, %s",
				c.opts.Retry.MaxElapsed.Round(time.Second), resumeHint)
			return res, ce
		}
		c.logger.Warn("namespace copy interrupted, starting it again", "ns", t.NS.String(), "attempt", attempt,
			"documents", read, "delay", delay, "err", err)
		jitter := time.Duration(rand.Int64N(int64(delay)/2 + 1))
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(delay + jitter):
		}
		delay = min(2*delay, c.opts.Retry.Max)
	}
}

func (c *Copier) noteConnLoss(ns migration.Namespace, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastLoss = &connLoss{ns: ns, err: err, at: time.Now()}
}

// lossElsewhere is the latest failure of another namespace than ns that
// closed a source connection within the last minute, or nil. FerretDB
// drops every cursor of a closed connection, and the pool shares
// connections between namespaces, so such a failure explains a lost cursor
// of ns.
func (c *Copier) lossElsewhere(ns migration.Namespace) *connLoss {
	c.mu.Lock()
	loss := c.lastLoss
	c.mu.Unlock()
	if loss == nil || loss.ns == ns || time.Since(loss.at) > time.Minute {
		return nil
	}
	return loss
}

// rootCause is err, or for a lost cursor the failure of another namespace
// that closed a connection shortly before (lossElsewhere), so the message
// names the cause, not the symptom.
func (c *Copier) rootCause(ns migration.Namespace, err error) error {
	loss := c.lossElsewhere(ns)
	if !mdb.IsCursorLost(err) || loss == nil {
		return err
	}
	return fmt.Errorf("%w (the cursor was most likely dropped with a connection the driver closed after %s failed: %v)", err, loss.ns, loss.err)
}

func deterministicHint(err error) string {
	switch {
	case mdb.IsCursorLost(err):
		return "the server drops this collection's cursor at the same document every time: check the source server's log around that document (a document it cannot return, a cursor timeout), fix it or exclude the collection, " + resumeHint
	default:
		return "the connection breaks at the same document every time, which a network fault would not do: the source server most likely cannot send a document near there (FerretDB closes the connection on BSON types it does not support); check its log, fix or exclude the collection, " + resumeHint
	}
}

func hintFor(err error, fromSource bool) string {
	switch {
	case mdb.IsUnauthorized(err) && fromSource:
		return "the source user lacks the privilege to read this collection: grant it, " + resumeHint
	case mdb.IsUnauthorized(err):
		return "the destination user lacks the privilege to write this collection: grant it, " + resumeHint
	case fromSource:
		return "the source server refused to read this collection: fix the cause it names (or exclude the collection), " + resumeHint
	default:
		return "fix the cause the server names (or exclude the collection), " + resumeHint
	}
}
