package verify

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// scanBatch caps the cursor batches of full scans and re-reads: large
// batches, one unsorted cursor (the server neither sorts nor seeks), each
// batch also sized by the bytes of the one before (mdb.BatchSizer) so no
// reply outgrows 16 MiB on servers that do not cap replies.
const scanBatch = 1000

// scan streams every document of ns on one side, unsorted, calling fn with
// the document's _id key and bytes. The document is only valid during fn.
// A missing collection yields nothing.
func (v *Verifier) scan(ctx context.Context, side int, c *mongo.Client, ns migration.Namespace, fn func(key []byte, doc bson.Raw) error) error {
	cur, err := mdb.Scan(ctx, c.Database(ns.DB).Collection(ns.Coll), mdb.NewBatchSizer(mdb.SizerOptions{MaxDocs: scanBatch}), v.scanMethod(ctx, side, c))
	if err != nil {
		return fmt.Errorf("scan %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		doc := cur.Current()
		id, err := doc.LookupErr("_id")
		if err != nil {
			return fmt.Errorf("scan %s: document without _id: %w", ns, err)
		}
		if err := fn(idKey(id), doc); err != nil {
			return err
		}
		v.scanned.Add(1)
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("scan %s: %w", ns, err)
	}
	return nil
}

// scanMethod is the cheaper whole-collection read of side's server, probed
// once. A failed probe is tried again at the next scan; this one uses find
// (and, if the server is unreachable, says so itself).
func (v *Verifier) scanMethod(ctx context.Context, side int, c *mongo.Client) mdb.ScanMethod {
	v.scanMu.Lock()
	defer v.scanMu.Unlock()
	if m := v.scanWith[side]; m != "" {
		return m
	}
	si, err := mdb.Probe(ctx, c)
	if err != nil {
		v.logger.Warn("could not probe the server; this scan uses find", "side", sideName(side), "err", err)
		return mdb.ScanFind
	}
	v.scanWith[side] = si.ScanMethod()
	v.logger.Debug("scan method", "side", sideName(side), "server", si.Server(), "method", v.scanWith[side])
	return v.scanWith[side]
}

// sides runs f for the source and the destination concurrently.
func (v *Verifier) sides(ctx context.Context, f func(ctx context.Context, side int, c *mongo.Client) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for i, c := range []*mongo.Client{v.opts.Source, v.opts.Destination} {
		g.Go(func() error { return f(ctx, i, c) })
	}
	return g.Wait()
}

const (
	sideSource      = 0
	sideDestination = 1
)

// digests is pass 1: one unsorted scan of each side summing document
// fingerprints into buckets by _id. Memory is O(buckets).
func (v *Verifier) digests(ctx context.Context, ns migration.Namespace) ([2][]digest, error) {
	var out [2][]digest
	err := v.sides(ctx, func(ctx context.Context, side int, c *mongo.Client) error {
		d := make([]digest, v.opts.Buckets)
		h := hasher{ignoreFieldOrder: v.opts.IgnoreFieldOrder}
		n := 0
		err := v.scan(ctx, side, c, ns, func(key []byte, doc bson.Raw) error {
			if err := v.paced(ctx, &n); err != nil {
				return err
			}
			fp, err := h.hash(doc)
			if err != nil {
				return fmt.Errorf("%s _id %s: %w", ns, idString(key), err)
			}
			d[bucketOf(key, len(d))].add(fp)
			return nil
		})
		out[side] = d
		return err
	})
	return out, err
}
