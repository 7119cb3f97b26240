package mdb

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Reply and document size bounds.
const (
	// MaxBSONSize is the largest document a MongoDB server stores (16 MiB).
	MaxBSONSize = 16 << 20
	// DefaultBatchBytes is the reply size a BatchSizer aims at: half the
	// BSON limit, so a batch whose documents run up to twice the estimate
	// still fits in 16 MiB, far below the driver's 48 MB message limit.
	DefaultBatchBytes = 8 << 20
	// DefaultFirstBatch is the first batch of a cursor over documents of
	// unknown size: one document, so the first reply is at most 16 MiB.
	// Batches then grow at most 4× each (1, 4, 16, 64, 256, 1000 for small
	// documents).
	DefaultFirstBatch = 1
	// driverMaxMessage is the driver's limit on one reply (48 MB).
	driverMaxMessage = 48_000_000
)

// SizerOptions configures a BatchSizer. Zero values take the defaults.
type SizerOptions struct {
	// TargetBytes is the reply size to aim at (default DefaultBatchBytes).
	TargetBytes int64
	// MaxDocs caps the documents of one batch (default 1000).
	MaxDocs int
	// FirstDocs is the first batch, before anything is known about the
	// documents (default DefaultFirstBatch).
	FirstDocs int
}

// BatchSizer picks the batch sizes of one read — a cursor's find and its
// getMores (see Find) — so that a reply stays near TargetBytes whatever the
// documents weigh. Servers such as FerretDB return
// as many documents as the batch size asks for; a reply larger than the
// driver's 48 MB limit closes the connection (and, on FerretDB, every cursor
// opened on it). MongoDB caps a reply at 16 MiB itself, so sizing is harmless
// there.
//
// The estimate of a document's size is measured from the documents actually
// received (collStats avgObjSize is a storage size on some servers): the
// larger of the previous batch's mean and the largest document of recent
// batches (a peak that halves with every batch), so a batch stays under
// TargetBytes unless its documents are larger than any seen lately, and a
// few large documents among small ones do not shrink the batches for long.
// A batch grows at most 4× over the previous one. A collection whose
// documents jump from small to large within one batch can still overflow
// the driver's limit on such servers: TooLarge then shrinks the batches at
// that place for the next attempt. A BatchSizer is not safe for concurrent
// use; one read at a time uses it.
type BatchSizer struct {
	target  int64
	maxDocs int
	first   int
	size    int   // documents to ask for next
	read    int64 // documents observed since the read began
	peak    int64 // largest document of recent batches, halving each batch
	// overflows are where replies were too large, in documents from the
	// start of the read, with the batch size to use there.
	overflows []overflow
}

type overflow struct {
	from, to int64
	ceiling  int
}

// NewBatchSizer returns a sizer whose first batch is FirstDocs.
func NewBatchSizer(o SizerOptions) *BatchSizer {
	if o.TargetBytes <= 0 {
		o.TargetBytes = DefaultBatchBytes
	}
	if o.MaxDocs <= 0 {
		o.MaxDocs = 1000
	}
	if o.FirstDocs <= 0 {
		o.FirstDocs = DefaultFirstBatch
	}
	first := min(o.FirstDocs, o.MaxDocs)
	return &BatchSizer{target: o.TargetBytes, maxDocs: o.MaxDocs, first: first, size: first}
}

func clampDocs(n, lo, hi int) int { return max(lo, min(n, hi)) }

// Size is the number of documents to ask for in the next batch (≥ 1).
func (s *BatchSizer) Size() int {
	n := s.size
	for _, o := range s.overflows {
		switch {
		case s.read >= o.to:
		case s.read >= o.from:
			n = min(n, o.ceiling)
		default: // end the batch no further than ceiling documents into the region
			n = int(min(int64(n), o.from-s.read+int64(o.ceiling)))
		}
	}
	return max(n, 1)
}

// Restart begins a new read of the same documents (another attempt): the
// next batch is a first batch again, and the places where replies were too
// large keep their smaller batches.
func (s *BatchSizer) Restart() { s.read, s.size = 0, s.first }

// Observe records a batch received: docs documents of bytes in all, the
// largest of them largest bytes. The next Size follows from it.
func (s *BatchSizer) Observe(docs int, bytes, largest int64) {
	if docs <= 0 {
		return
	}
	s.read += int64(docs)
	s.peak = max(s.peak/2, largest)
	est := max(bytes/int64(docs), s.peak, 1)
	next := int(min(s.target/est, int64(s.maxDocs)))
	s.size = min(clampDocs(next, 1, 4*docs), s.maxDocs)
}

// TooLarge records that the batch about to be read (Size documents from the
// current place) came back too large for the driver: from here on, for as
// many documents, later attempts (after Restart) ask for an eighth as many
// at a time. It returns false when the batch was one document, so the
// caller knows smaller batches cannot help.
func (s *BatchSizer) TooLarge() bool {
	n := s.Size()
	if n <= 1 {
		return false
	}
	s.overflows = append(s.overflows, overflow{from: s.read, to: s.read + int64(n), ceiling: max(1, n/8)})
	s.size = max(1, n/8)
	return true
}

// Cursor reads a driver cursor batch by batch, setting each getMore's batch
// size from a BatchSizer and the bytes of the batch before. Use it like
// *mongo.Cursor: Next, Current, Err, Close.
type Cursor struct {
	cur     *mongo.Cursor
	sizer   *BatchSizer
	docs    int
	bytes   int64
	largest int64
}

// Find runs find on coll with the first batch sized by s and returns a
// Cursor that sizes every later batch. It begins a new read of s
// (BatchSizer.Restart). opts must not set a batch size.
func Find(ctx context.Context, coll *mongo.Collection, filter any, s *BatchSizer, opts ...options.Lister[options.FindOptions]) (*Cursor, error) {
	s.Restart()
	opts = append(opts, options.Find().SetBatchSize(int32(s.Size())))
	cur, err := coll.Find(ctx, filter, opts...)
	if err != nil {
		return nil, err
	}
	return &Cursor{cur: cur, sizer: s}, nil
}

// ScanMethod is the command that reads a whole collection.
type ScanMethod string

const (
	// ScanFind reads with find and no filter: the standard read, and the
	// one for MongoDB.
	ScanFind ScanMethod = "find"
	// ScanAggregate reads with an empty aggregation pipeline. FerretDB
	// passes every document a find returns through its filter and its
	// projection, rebuilding the document, even when both are empty; an
	// empty pipeline returns the stored documents as they are — 13 % less
	// source CPU per document in the copy benchmark (docs/design/copy.md).
	ScanAggregate ScanMethod = "aggregate"
)

// Validate refuses a method Scan does not know ("" is the default, find).
func (m ScanMethod) Validate() error {
	switch m {
	case "", ScanFind, ScanAggregate:
		return nil
	}
	return fmt.Errorf("scan method %q: want %q or %q", string(m), ScanFind, ScanAggregate)
}

// Scan reads every document of coll in natural order with m (ScanFind when
// empty), the first batch sized by s, as Find does.
func Scan(ctx context.Context, coll *mongo.Collection, s *BatchSizer, m ScanMethod) (*Cursor, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", coll.Name(), err)
	}
	if m != ScanAggregate {
		return Find(ctx, coll, bson.D{}, s)
	}
	s.Restart()
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{}, options.Aggregate().SetBatchSize(int32(s.Size())))
	if err != nil {
		return nil, err
	}
	return &Cursor{cur: cur, sizer: s}, nil
}

// Next advances to the next document. At the end of a batch it tells the
// sizer what the batch weighed and sets the next getMore's batch size.
func (c *Cursor) Next(ctx context.Context) bool {
	if c.docs > 0 && c.cur.RemainingBatchLength() == 0 {
		c.sizer.Observe(c.docs, c.bytes, c.largest)
		c.docs, c.bytes, c.largest = 0, 0, 0
		c.cur.SetBatchSize(int32(c.sizer.Size()))
	}
	if !c.cur.Next(ctx) {
		return false
	}
	n := int64(len(c.cur.Current))
	c.docs++
	c.bytes += n
	c.largest = max(c.largest, n)
	return true
}

// Current is the document Next read; valid until the next call of Next.
func (c *Cursor) Current() bson.Raw { return c.cur.Current }

// Err is the cursor's error, if any.
func (c *Cursor) Err() error { return c.cur.Err() }

// Close closes the server cursor.
func (c *Cursor) Close(ctx context.Context) error { return c.cur.Close(ctx) }
