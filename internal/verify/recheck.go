package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// fetched is one side's current state of a batch of documents.
type fetched struct {
	hash map[string]docHash
}

// fetch re-reads the documents with the given _id keys from one side
// (fetchEach). Keys are matched exactly (type and bytes), so an int64 _id
// never stands in for an int32 one.
func (v *Verifier) fetch(ctx context.Context, c *mongo.Client, ns migration.Namespace, keys [][]byte) (fetched, error) {
	h := &hasher{ignoreFieldOrder: v.opts.IgnoreFieldOrder}
	out := fetched{hash: map[string]docHash{}}
	err := v.fetchEach(ctx, c, ns, keys, func(k string, doc bson.Raw) error {
		fp, err := h.hash(doc)
		if err != nil {
			return fmt.Errorf("%s _id %s: %w", ns, idString([]byte(k)), err)
		}
		out.hash[k] = fp
		return nil
	})
	return out, err
}

// pointTypes are the _id types an equality find reads without a scan that
// decodes every document: FerretDB pushes `{_id: <string or ObjectId>}`
// down to SQL (filtered inside SQLite or PostgreSQL, ~10× cheaper than an
// $in, which it evaluates on every decoded document); MongoDB uses the
// _id index for any type, and for an $in as well.
var pointTypes = map[bson.Type]bool{bson.TypeString: true, bson.TypeObjectID: true}

// lookupPlan splits keys into those read by one equality find each (point)
// and those read by one $in (in): keys of pointTypes go to point when there
// are at most PointLookups of them.
func (v *Verifier) lookupPlan(keys [][]byte) (point, in [][]byte) {
	for _, k := range keys {
		if len(k) > 0 && pointTypes[bson.Type(k[0])] {
			point = append(point, k)
		} else {
			in = append(in, k)
		}
	}
	if len(point) > v.opts.PointLookups {
		return nil, keys
	}
	return point, in
}

// lookupMethod names the plan of keys for logs: "equality", "in" or
// "equality+in".
func (v *Verifier) lookupMethod(keys [][]byte) string {
	point, in := v.lookupPlan(keys)
	switch {
	case len(point) > 0 && len(in) > 0:
		return "equality+in"
	case len(point) > 0:
		return "equality"
	}
	return "in"
}

// fetchEach streams the documents with the given _id keys from one side
// to fn, with their _id key: the keys of lookupPlan's point set by one
// equality find each (PointConcurrency at a time), the others by one $in
// (batches sized by bytes). fn is called by one goroutine at a time; the
// document is only valid during fn.
func (v *Verifier) fetchEach(ctx context.Context, c *mongo.Client, ns migration.Namespace, keys [][]byte, fn func(k string, doc bson.Raw) error) error {
	point, rest := v.lookupPlan(keys)
	coll := c.Database(ns.DB).Collection(ns.Coll)
	var mu sync.Mutex // serializes fn
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.opts.PointConcurrency)
	for _, k := range point {
		g.Go(func() error {
			doc, err := coll.FindOne(gctx, bson.D{{Key: "_id", Value: idValue(k)}}).Raw()
			if errors.Is(err, mongo.ErrNoDocuments) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("re-read _id %s of %s: %w", idString(k), ns, err)
			}
			if !bytes.Equal(idKey(doc.Lookup("_id")), k) {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			return fn(string(k), doc)
		})
	}
	if len(rest) > 0 {
		g.Go(func() error {
			return fetchIn(gctx, coll, ns, rest, func(k string, doc bson.Raw) error {
				mu.Lock()
				defer mu.Unlock()
				return fn(k, doc)
			})
		})
	}
	return g.Wait()
}

// fetchIn streams the documents with the given _id keys from coll (one $in
// query, batches sized by bytes) to fn.
func fetchIn(ctx context.Context, coll *mongo.Collection, ns migration.Namespace, keys [][]byte, fn func(k string, doc bson.Raw) error) error {
	want := make(map[string]bool, len(keys))
	in := make(bson.A, len(keys))
	for i, k := range keys {
		want[string(k)] = true
		in[i] = idValue(k)
	}
	cur, err := mdb.Find(ctx, coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: in}}}},
		mdb.NewBatchSizer(mdb.SizerOptions{MaxDocs: scanBatch}))
	if err != nil {
		return fmt.Errorf("re-read %d documents of %s: %w", len(keys), ns, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		doc := cur.Current()
		k := string(idKey(doc.Lookup("_id")))
		if !want[k] {
			continue
		}
		if err := fn(k, doc); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("re-read %d documents of %s: %w", len(keys), ns, err)
	}
	return nil
}

// batches calls fn with the _id keys of in, InBatch at a time.
func (v *Verifier) batches(in *recordFile, fn func(keys [][]byte) error) error {
	var keys [][]byte
	err := in.each(func(_ byte, p []byte) error {
		keys = append(keys, append([]byte(nil), p...))
		if len(keys) < v.opts.InBatch {
			return nil
		}
		err := fn(keys)
		keys = keys[:0]
		return err
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	return fn(keys)
}

// compareBatch re-reads keys from both sides and writes the ones that still
// differ, with their current kind, to out.
func (v *Verifier) compareBatch(ctx context.Context, ns migration.Namespace, keys [][]byte, out *recordFile) error {
	var got [2]fetched
	err := v.sides(ctx, func(ctx context.Context, side int, c *mongo.Client) error {
		var err error
		got[side], err = v.fetch(ctx, c, ns, keys)
		return err
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		s, inS := got[sideSource].hash[string(k)]
		d, inD := got[sideDestination].hash[string(k)]
		var err error
		switch {
		case inS && !inD:
			err = out.write(byte(kindMissing), k)
		case !inS && inD:
			err = out.write(byte(kindExtra), k)
		case inS && inD && s != d:
			err = out.write(byte(kindDiffering), k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// recheck re-reads the candidates from both sides up to Rechecks times, with
// backoff between rounds, and returns those that differ in every round (the
// caller owns the result). Documents still changing on a live source settle
// between rounds and drop out.
func (v *Verifier) recheck(ctx context.Context, ns migration.Namespace, cands *recordFile) (*recordFile, int64, error) {
	delay := v.opts.RecheckBackoff
	rechecked := int64(0)
	cur := cands
	for round := 1; round <= v.opts.Rechecks && cur.n > 0; round++ {
		select {
		case <-ctx.Done():
			return cur, rechecked, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 8*time.Second)
		next, err := newRecordFile(v.opts.TempDir)
		if err != nil {
			return cur, rechecked, err
		}
		rechecked += cur.n
		err = v.batches(cur, func(keys [][]byte) error { return v.compareBatch(ctx, ns, keys, next) })
		if cur != cands {
			cur.close()
		}
		cur = next
		if err != nil {
			return cur, rechecked, err
		}
		v.logger.Debug("recheck round done", "ns", ns.String(), "round", round, "still_differ", cur.n)
	}
	if cur == cands { // no round ran: hand back a copy the caller may close
		next, err := newRecordFile(v.opts.TempDir)
		if err != nil {
			return cur, rechecked, err
		}
		if err := cands.each(func(t byte, p []byte) error { return next.write(t, p) }); err != nil {
			return next, rechecked, err
		}
		cur = next
	}
	return cur, rechecked, nil
}

// numericTypes are the _id types the server compares by value across types.
var numericTypes = map[bson.Type]bool{bson.TypeDouble: true, bson.TypeInt32: true, bson.TypeInt64: true, bson.TypeDecimal128: true}

// exactID filters on exactly this _id: for numbers the type is pinned too,
// so repairing int64(5) never touches a destination document with int32(5).
func exactID(key []byte) bson.D {
	v := idValue(key)
	if !numericTypes[v.Type] {
		return bson.D{{Key: "_id", Value: v}}
	}
	return bson.D{{Key: "$and", Value: bson.A{
		bson.D{{Key: "_id", Value: v}},
		bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: int32(v.Type)}}}},
	}}}
}

// repair makes the destination documents of cands equal to the source's
// current ones: each batch is deleted from the destination with one
// statement (exact _ids, so one scan on servers without _id lookups), then
// the source's current documents are streamed from one $in and inserted in
// batches of at most repairBatchBytes (so memory does not grow with the
// documents' size). Delete-then-insert rather than replace: FerretDB skips
// a replace whose document compares equal (int32(1) vs int64(1)), which
// would leave a type difference unrepaired. A crash between the two steps
// leaves documents missing, which the next verification finds and repairs.
func (v *Verifier) repair(ctx context.Context, ns migration.Namespace, cands *recordFile) (int64, error) {
	repaired := int64(0)
	coll := v.opts.Destination.Database(ns.DB).Collection(ns.Coll)
	err := v.batches(cands, func(keys [][]byte) error {
		or := make(bson.A, len(keys))
		for i, k := range keys {
			or[i] = exactID(k)
		}
		if _, err := coll.DeleteMany(ctx, bson.D{{Key: "$or", Value: or}}); err != nil {
			return fmt.Errorf("repair %s: delete %d documents on the destination: %w", ns, len(keys), err)
		}
		var puts []any
		var bytes int
		flush := func() error {
			if len(puts) == 0 {
				return nil
			}
			if _, err := coll.InsertMany(ctx, puts, options.InsertMany().SetOrdered(false)); err != nil {
				return fmt.Errorf("repair %s: copy %d documents to the destination: %w", ns, len(puts), err)
			}
			puts, bytes = nil, 0
			return nil
		}
		err := v.fetchEach(ctx, v.opts.Source, ns, keys, func(_ string, doc bson.Raw) error {
			if len(puts) > 0 && bytes+len(doc) > repairBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			puts = append(puts, append(bson.Raw(nil), doc...))
			bytes += len(doc)
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
		repaired += int64(len(keys))
		return nil
	})
	return repaired, err
}

// repairBatchBytes bounds the source documents one repair insert carries.
const repairBatchBytes = 8 << 20

// summarize counts the differences in final and keeps examples.
func (v *Verifier) summarize(final *recordFile, res *NamespaceResult) error {
	res.Missing, res.Extra, res.Differing = 0, 0, 0
	res.Examples = Examples{Missing: []string{}, Extra: []string{}, Differing: []string{}}
	return final.each(func(t byte, p []byte) error {
		var n *int64
		var ex *[]string
		switch kind(t) {
		case kindMissing:
			n, ex = &res.Missing, &res.Examples.Missing
		case kindExtra:
			n, ex = &res.Extra, &res.Examples.Extra
		case kindDiffering:
			n, ex = &res.Differing, &res.Examples.Differing
		default:
			return fmt.Errorf("spill file: unknown record kind %q", t)
		}
		*n++
		if len(*ex) < v.opts.MaxExamples {
			*ex = append(*ex, idString(p))
		}
		return nil
	})
}
