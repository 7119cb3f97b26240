package clone

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Options tunes the copy. Zero values take the defaults.
type Options struct {
	// Workers is how many namespaces are copied at once (default 4).
	Workers int
	// InsertersPerTask is how many insert batches of one namespace are in
	// flight at once (default 1). The cursor always reads the next batch
	// while the previous one is inserted. More inserters help servers with
	// concurrent writers per collection (MongoDB); on FerretDB/SQLite, where
	// one database is one file with one writer, they only add lock contention.
	InsertersPerTask int
	// BatchDocuments and BatchBytes bound one insert (defaults 1000 and 8 MiB).
	BatchDocuments int
	BatchBytes     int
	// FirstBatch, when > 0, is the documents asked for in every cursor's
	// first batch. By default it is the task's (Task.FirstBatch, from a
	// sample), else mdb.DefaultFirstBatch: one document, so the first reply
	// is at most 16 MiB and a document that breaks the connection is met
	// after some were read — what tells a deterministic failure from a
	// transient one (copyTask).
	FirstBatch int
	// Scan is how each namespace is read (default mdb.ScanFind); the engine
	// sets the source's cheaper method (mdb.ServerInfo.ScanMethod).
	Scan mdb.ScanMethod
	// MaxBytesInFlight caps the document bytes read but not yet inserted,
	// across all namespaces (default 64 MiB). Memory does not grow with the
	// size of the data.
	MaxBytesInFlight int64
	// Retry is the policy for transient errors (default mdb.DefaultRetry).
	// A namespace whose copy is interrupted is started again with its
	// backoff (Initial to Max) until it has made no progress for MaxElapsed.
	Retry mdb.RetryPolicy
	// SameFailures is how many attempts of one namespace may fail the same
	// way at the same document before the failure is called deterministic
	// and the copy stops (default 3).
	SameFailures int
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.InsertersPerTask <= 0 {
		o.InsertersPerTask = 1
	}
	if o.BatchDocuments <= 0 {
		o.BatchDocuments = 1000
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 8 << 20
	}
	if o.MaxBytesInFlight <= 0 {
		o.MaxBytesInFlight = 64 << 20
	}
	o.BatchBytes = int(min(int64(o.BatchBytes), o.MaxBytesInFlight))
	if o.Retry == (mdb.RetryPolicy{}) {
		o.Retry = mdb.DefaultRetry
	}
	if o.SameFailures <= 0 {
		o.SameFailures = 3
	}
	return o
}

// Task is one unit of copy: a whole namespace.
type Task struct {
	NS migration.Namespace
	// EstimatedBytes orders tasks (largest first).
	EstimatedBytes int64
	// Ordered keeps the source's natural order (capped collections): one
	// insert batch in flight at a time.
	Ordered bool
	// FirstBatch, when > 0, is this task's first cursor batch in documents
	// (FirstBatchOfSample), unless Options.FirstBatch is set.
	FirstBatch int
	// Prepare, when not nil, runs once before the first attempt, in the
	// task's worker: the first batch it returns (> 0) replaces FirstBatch,
	// and an error ends the copy. The engine samples a namespace here when
	// every namespace gets a worker at once, so the samples run alongside
	// the other namespaces' reads instead of before all of them.
	Prepare func(ctx context.Context) (firstBatch int, err error)
}

// FirstBatchOfSample is the first batch of a read whose first docs
// documents in natural order were just read as a sample, the largest of
// them largest bytes: those documents again, as many as fit in
// mdb.DefaultBatchBytes at the largest size. Their reply is known to be
// small and readable, so the one-document start and its ramp (1, 4, 16, 64,
// 256: five round trips to the first 341 documents) are not needed; the
// batches then grow from it at most 4× each, and a document that breaks the
// connection is still met after some were read (copyTask). 0 without a
// sample.
func FirstBatchOfSample(docs, largest int64) int {
	if docs <= 0 || largest <= 0 {
		return 0
	}
	return int(max(1, min(docs, mdb.DefaultBatchBytes/largest)))
}

// Result is what one task copied.
type Result struct {
	Documents int64
	Bytes     int64
	// Took is the wall time of the attempt that copied the task; Reading,
	// Queueing and Inserting split it: the reader waiting for the source
	// cursor, the reader waiting for the budget and an inserter, and the
	// inserts (summed over inserters).
	Took                         time.Duration
	Reading, Queueing, Inserting time.Duration
	// FirstBatches is the time from the find to the first BatchDocuments
	// documents read (0 when the task has fewer): what the first batches'
	// ramp costs.
	FirstBatches time.Duration
}

// Hooks connect the copy to its owner. They are called from several
// goroutines at once and must be safe for concurrent use.
type Hooks struct {
	// Begin prepares the destination for an attempt at t: it must leave the
	// namespace empty (drop and re-create it), so a task that was interrupted
	// — by an error here or by a killed process — is redone without
	// duplicates or losses. Required.
	Begin func(ctx context.Context, t Task) error
	// Progress reports documents and bytes inserted by one batch of t.
	Progress func(t Task, docs, bytes int64)
	// Done is called once t is copied completely; an error stops the copy.
	Done func(ctx context.Context, t Task, r Result) error
}

// Copier copies namespaces from a source to a destination.
type Copier struct {
	src, dst *mongo.Client
	opts     Options
	logger   *slog.Logger
	inFlight *semaphore.Weighted

	peak, cur atomic.Int64 // bytes in flight, for tests and the benchmark

	mu       sync.Mutex // guards lastLoss
	lastLoss *connLoss  // the latest failure that closed a source connection
}

// connLoss is a failure that made the driver close a connection, taking with
// it (on FerretDB) every cursor opened on that connection.
type connLoss struct {
	ns  migration.Namespace
	err error
	at  time.Time
}

// New returns a Copier. It starts nothing.
func New(src, dst *mongo.Client, opts Options, logger *slog.Logger) *Copier {
	opts = opts.withDefaults()
	return &Copier{src: src, dst: dst, opts: opts, logger: logger.With("component", "clone"),
		inFlight: semaphore.NewWeighted(opts.MaxBytesInFlight)}
}

// PeakBytesInFlight is the most document bytes held at once so far.
func (c *Copier) PeakBytesInFlight() int64 { return c.peak.Load() }

// CopyAll copies every task, largest first, Options.Workers at a time. A
// task whose copy is interrupted — a transient error, a lost cursor, a
// reply too large for the driver — is begun again (Hooks.Begin) with
// bounded backoff (copyTask); any other error, a deterministic failure or
// one that outlasts the retry policy stops the copy and is returned as a
// *CopyError naming the namespace, the cause and what to do.
func (c *Copier) CopyAll(ctx context.Context, tasks []Task, h Hooks) error {
	tasks = slices.Clone(tasks)
	slices.SortStableFunc(tasks, func(a, b Task) int { return cmp.Compare(b.EstimatedBytes, a.EstimatedBytes) })
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Workers)
	for _, t := range tasks {
		g.Go(func() error {
			res, err := c.copyTask(ctx, t, h)
			if err != nil {
				return err
			}
			if h.Done != nil {
				return h.Done(ctx, t, res)
			}
			return nil
		})
	}
	return g.Wait()
}

type batch struct {
	docs  []bson.Raw
	bytes int64
}

// add appends a copy of doc (cursors reuse their buffer); the bytes are
// passed on untouched.
func (b *batch) add(doc bson.Raw, capacity int) {
	if b.docs == nil {
		b.docs = make([]bson.Raw, 0, capacity)
	}
	b.docs = append(b.docs, slices.Clone(doc))
	b.bytes += int64(len(doc))
}

// copyOnce reads t with one unsorted cursor, batches sized by sizer, and
// inserts in unordered batches. read is how many documents it read.
func (c *Copier) copyOnce(ctx context.Context, t Task, sizer *mdb.BatchSizer, progress func(Task, int64, int64)) (res Result, read int64, err error) {
	began := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	batches := make(chan batch)
	var docs, bytes atomic.Int64
	var readNanos, sendNanos, insertNanos atomic.Int64

	g.Go(func() error {
		defer close(batches)
		return c.read(ctx, t, sizer, &read, batches, &readNanos, &sendNanos, &res.FirstBatches)
	})
	dst := c.dst.Database(t.NS.DB).Collection(t.NS.Coll)
	inserters := c.opts.InsertersPerTask
	if t.Ordered {
		inserters = 1
	}
	for range inserters {
		g.Go(func() error {
			for b := range batches {
				ib := time.Now()
				err := c.insert(ctx, dst, b)
				insertNanos.Add(int64(time.Since(ib)))
				c.release(b.bytes)
				if err != nil {
					return fmt.Errorf("insert into %s: %w", t.NS, err)
				}
				docs.Add(int64(len(b.docs)))
				bytes.Add(b.bytes)
				if progress != nil {
					progress(t, int64(len(b.docs)), b.bytes)
				}
			}
			return nil
		})
	}
	err = g.Wait()
	res.Documents, res.Bytes, res.Took = docs.Load(), bytes.Load(), time.Since(began)
	res.Reading, res.Queueing, res.Inserting = time.Duration(readNanos.Load()), time.Duration(sendNanos.Load()), time.Duration(insertNanos.Load())
	c.logger.Debug("copy attempt", "ns", t.NS.String(), "documents", res.Documents, "took", res.Took.Round(time.Millisecond),
		"reading", res.Reading.Round(time.Millisecond), "queueing", res.Queueing.Round(time.Millisecond),
		"inserting", res.Inserting.Round(time.Millisecond), "first_batches", res.FirstBatches.Round(time.Millisecond))
	return res, read, err
}

// read sends t's documents to out in batches, counting them in read;
// readNanos and sendNanos add up the time spent waiting for the cursor and
// for the budget and an inserter. The cursor's batches are sized by sizer
// (mdb.Cursor), whose state survives the attempt.
func (c *Copier) read(ctx context.Context, t Task, sizer *mdb.BatchSizer, read *int64, out chan<- batch, readNanos, sendNanos *atomic.Int64, firstBatches *time.Duration) error {
	coll := c.src.Database(t.NS.DB).Collection(t.NS.Coll)
	began := time.Now()
	cur, err := mdb.Scan(ctx, coll, sizer, c.opts.Scan)
	if err != nil {
		return &readError{err: err}
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var b batch
	send := func() error {
		if len(b.docs) == 0 {
			return nil
		}
		sb := time.Now()
		defer func() { sendNanos.Add(int64(time.Since(sb))) }()
		if err := c.acquire(ctx, b.bytes); err != nil {
			return err
		}
		select {
		case out <- b:
		case <-ctx.Done():
			c.release(b.bytes)
			return ctx.Err()
		}
		b = batch{}
		return nil
	}
	var reading time.Duration
	defer func() { readNanos.Add(int64(reading)) }()
	rb := time.Now()
	for cur.Next(ctx) {
		reading += time.Since(rb)
		doc := cur.Current()
		if len(b.docs) > 0 && (len(b.docs) >= c.opts.BatchDocuments || b.bytes+int64(len(doc)) > int64(c.opts.BatchBytes)) {
			if err := send(); err != nil {
				return err
			}
		}
		b.add(doc, c.opts.BatchDocuments)
		if *read++; *read == int64(c.opts.BatchDocuments) {
			*firstBatches = time.Since(began)
		}
		rb = time.Now()
	}
	reading += time.Since(rb)
	if err := cur.Err(); err != nil {
		return &readError{err: err}
	}
	return send()
}

// acquire takes n bytes of the in-flight budget (a single document larger
// than the budget takes all of it).
func (c *Copier) acquire(ctx context.Context, n int64) error {
	n = min(n, c.opts.MaxBytesInFlight)
	if err := c.inFlight.Acquire(ctx, n); err != nil {
		return err
	}
	now := c.cur.Add(n)
	for {
		p := c.peak.Load()
		if now <= p || c.peak.CompareAndSwap(p, now) {
			break
		}
	}
	return nil
}

func (c *Copier) release(n int64) {
	n = min(n, c.opts.MaxBytesInFlight)
	c.cur.Add(-n)
	c.inFlight.Release(n)
}

// insert writes one batch unordered, retrying transient errors. Duplicate-key
// errors are accepted: on a retry they are the documents of an earlier
// attempt that did reach the server.
func (c *Copier) insert(ctx context.Context, dst *mongo.Collection, b batch) error {
	opts := options.InsertMany().SetOrdered(false).SetBypassDocumentValidation(true)
	return mdb.Retry(ctx, c.logger, "insert batch into "+dst.Database().Name()+"."+dst.Name(), c.opts.Retry, func(ctx context.Context) error {
		_, err := dst.InsertMany(ctx, b.docs, opts)
		if err != nil && onlyDuplicates(err) {
			return nil
		}
		return err
	})
}

func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !mdb.IsDuplicateKey(we) {
			return false
		}
	}
	return true
}
