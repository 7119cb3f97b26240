package mongotest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// OpKind is a write the workload performs.
type OpKind string

// The writes a workload mixes.
const (
	OpInsert  OpKind = "insert"
	OpUpdate  OpKind = "update" // $set, $unset and $inc
	OpReplace OpKind = "replace"
	OpDelete  OpKind = "delete"
)

// WorkloadOptions configures a Workload. Zero fields take the defaults shown.
type WorkloadOptions struct {
	// Namespaces are "db.coll" names to write to (default "app.items").
	Namespaces []string
	// Writers is the number of concurrent writers (default 2).
	Writers int
	// Rate is the target operations per second over all writers (0: as fast as possible).
	Rate float64
	// Mix weights the operations (default insert 4, update 3, replace 1, delete 1).
	Mix map[OpKind]int
	// DocBytes is the mean size of a document's filler (default 256).
	DocBytes int
	// Seed makes the sequence of operations repeatable.
	Seed uint64
	// IDBase offsets generated _ids so two workloads never collide.
	IDBase int64
	// ObjectIDs makes the _ids ObjectIds (MongoDB's default; FerretDB on
	// SQLite filters those inside SQLite, ~10× cheaper than an int64 _id,
	// which it decodes every document to filter) instead of int64s.
	// Record.ID is the number the ObjectId is made of (ObjectIDFor).
	ObjectIDs bool
}

// ObjectIDFor is the ObjectId a workload with ObjectIDs uses for id.
func ObjectIDFor(id int64) bson.ObjectID {
	var oid bson.ObjectID
	binary.BigEndian.PutUint64(oid[4:], uint64(id))
	return oid
}

// Record is one acknowledged write.
type Record struct {
	Op OpKind
	NS string
	ID int64
	At time.Time
}

// Workload writes to a server from several goroutines until stopped, and
// records every write the server acknowledged. Each writer owns the _ids
// it creates, so its updates, replaces and deletes always hit live documents.
type Workload struct {
	opts   WorkloadOptions
	client *mongo.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards records and errs
	records []Record
	errs    []error
}

// StartWorkload starts the writers; call Stop to end them.
func StartWorkload(ctx context.Context, c *mongo.Client, o WorkloadOptions) *Workload {
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{"app.items"}
	}
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.Mix == nil {
		o.Mix = map[OpKind]int{OpInsert: 4, OpUpdate: 3, OpReplace: 1, OpDelete: 1}
	}
	if o.DocBytes <= 0 {
		o.DocBytes = 256
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Workload{opts: o, client: c, cancel: cancel}
	for i := range o.Writers {
		w.wg.Add(1)
		go w.writer(ctx, i)
	}
	return w
}

// Stop ends the writers after their current write, waits for them and
// returns what they did, with any write errors.
func (w *Workload) Stop() ([]Record, error) {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Record(nil), w.records...), errors.Join(w.errs...)
}

// Counts returns how many writes of each kind were acknowledged so far.
func (w *Workload) Counts() map[OpKind]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[OpKind]int{}
	for _, r := range w.records {
		m[r.Op]++
	}
	return m
}

func (w *Workload) writer(ctx context.Context, n int) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(w.opts.Seed, uint64(n)+1))
	live := map[string][]int64{} // ns → ids this writer created and has not deleted
	next := w.opts.IDBase + int64(n)*1_000_000_000
	var interval time.Duration
	if w.opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(w.opts.Writers) / w.opts.Rate)
	}
	tick := time.Now()
	for ctx.Err() == nil {
		if interval > 0 {
			tick = tick.Add(interval)
			if d := time.Until(tick); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			} else if d < -time.Second {
				tick = time.Now() // fell behind: don't burst to catch up
			}
		}
		ns := w.opts.Namespaces[rng.IntN(len(w.opts.Namespaces))]
		op := w.pick(rng)
		ids := live[ns]
		if op != OpInsert && len(ids) == 0 {
			op = OpInsert
		}
		var id int64
		var err error
		coll := w.collection(ns)
		key := func() any {
			if w.opts.ObjectIDs {
				return ObjectIDFor(id)
			}
			return id
		}
		// The write itself is not cancelled by Stop: a cancelled write may
		// still land on the server, and the record must say what landed.
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		switch op {
		case OpInsert:
			next++
			id = next
			d := Document(rng, id, w.opts.DocBytes)
			d[0].Value = key()
			_, err = coll.InsertOne(opCtx, d)
			if err == nil {
				live[ns] = append(ids, id)
			}
		case OpUpdate:
			id = ids[rng.IntN(len(ids))]
			_, err = coll.UpdateOne(opCtx, bson.D{{Key: "_id", Value: key()}}, updateFor(rng))
		case OpReplace:
			id = ids[rng.IntN(len(ids))]
			_, err = coll.ReplaceOne(opCtx, bson.D{{Key: "_id", Value: key()}}, Document(rng, id, w.opts.DocBytes)[1:])
		case OpDelete:
			i := rng.IntN(len(ids))
			id = ids[i]
			_, err = coll.DeleteOne(opCtx, bson.D{{Key: "_id", Value: key()}})
			if err == nil {
				ids[i] = ids[len(ids)-1]
				live[ns] = ids[:len(ids)-1]
			}
		}
		cancel()
		w.mu.Lock()
		if err == nil {
			w.records = append(w.records, Record{Op: op, NS: ns, ID: id, At: time.Now()})
		} else {
			w.errs = append(w.errs, fmt.Errorf("workload %s %s _id %d: %w", op, ns, id, err))
		}
		w.mu.Unlock()
	}
}

func (w *Workload) collection(ns string) *mongo.Collection {
	db, coll, _ := strings.Cut(ns, ".")
	return w.client.Database(db).Collection(coll, options.Collection())
}

func (w *Workload) pick(rng *rand.Rand) OpKind {
	total := 0
	for _, n := range w.opts.Mix {
		total += n
	}
	r := rng.IntN(max(total, 1))
	for _, k := range []OpKind{OpInsert, OpUpdate, OpReplace, OpDelete} {
		if r < w.opts.Mix[k] {
			return k
		}
		r -= w.opts.Mix[k]
	}
	return OpInsert
}

func updateFor(rng *rand.Rand) bson.D {
	switch rng.IntN(3) {
	case 0:
		return bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: statuses[rng.IntN(len(statuses))]}, {Key: "profile.score", Value: rng.Float64()}}}}
	case 1:
		return bson.D{{Key: "$unset", Value: bson.D{{Key: "note", Value: ""}}}, {Key: "$set", Value: bson.D{{Key: "touched", Value: time.Now().UTC().Truncate(time.Millisecond)}}}}
	default:
		return bson.D{{Key: "$inc", Value: bson.D{{Key: "counter", Value: int32(1)}}}}
	}
}

var statuses = []string{"new", "active", "suspended", "closed"}

// Document builds a document of varied shape and size with _id first, using
// only BSON that FerretDB stores unchanged: strings, int32, int64, doubles
// (finite, not -0), booleans, null, dates, ObjectIDs, binary, timestamps,
// embedded documents, arrays of scalars and arrays of documents (no nested
// arrays, no keys with '.' or a leading '$').
func Document(rng *rand.Rand, id int64, meanBytes int) bson.D {
	d := bson.D{
		{Key: "_id", Value: id},
		{Key: "status", Value: statuses[rng.IntN(len(statuses))]},
		{Key: "counter", Value: int32(rng.IntN(1000))},
		{Key: "created", Value: bson.NewDateTimeFromTime(time.UnixMilli(1_700_000_000_000 + rng.Int64N(1e10)))},
	}
	switch rng.IntN(4) {
	case 0:
		d = append(d, bson.E{Key: "profile", Value: bson.D{
			{Key: "name", Value: fmt.Sprintf("user-%d", id)},
			{Key: "score", Value: float64(rng.IntN(10000)) / 7},
			{Key: "verified", Value: rng.IntN(2) == 0},
			{Key: "address", Value: bson.D{{Key: "city", Value: "Lisbon"}, {Key: "zip", Value: int64(rng.IntN(99999))}}},
		}})
	case 1:
		tags := bson.A{}
		for range rng.IntN(6) {
			tags = append(tags, fmt.Sprintf("t%d", rng.IntN(50)))
		}
		d = append(d, bson.E{Key: "tags", Value: tags}, bson.E{Key: "ref", Value: bson.NewObjectID()})
	case 2:
		items := bson.A{}
		for i := range rng.IntN(4) + 1 {
			items = append(items, bson.D{{Key: "sku", Value: fmt.Sprintf("sku-%d", i)}, {Key: "qty", Value: int32(rng.IntN(9) + 1)}})
		}
		d = append(d, bson.E{Key: "items", Value: items}, bson.E{Key: "total", Value: int64(rng.IntN(1e6))})
	default:
		d = append(d, bson.E{Key: "blob", Value: bson.Binary{Subtype: 0, Data: randBytes(rng, 16+rng.IntN(64))}},
			bson.E{Key: "seen", Value: bson.Timestamp{T: uint32(1_700_000_000 + rng.IntN(1e6)), I: uint32(rng.IntN(100) + 1)}},
			bson.E{Key: "optional", Value: nil})
	}
	if rng.IntN(2) == 0 {
		d = append(d, bson.E{Key: "note", Value: "removable"})
	}
	size := meanBytes/2 + rng.IntN(meanBytes+1)
	d = append(d, bson.E{Key: "filler", Value: strings.Repeat(string(rune('a'+rng.IntN(26))), size)})
	return d
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}
