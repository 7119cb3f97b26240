package adversary

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// WorkloadOptions configures the CRUD + DDL workload.
type WorkloadOptions struct {
	Seed uint64
	// Databases and the collections each starts with.
	Databases   []string
	Collections int
	// Writers run CRUD concurrently (default 2). Each writer owns the
	// documents it inserts: FerretDB can log the images of concurrent
	// updates of one document out of order, which is the server's, not the
	// engine's, and would need repair.
	Writers int
	// Rate is CRUD operations per second over all writers (default 40).
	Rate float64
	// DDLEvery is the mean pause between DDL operations (0: no DDL).
	DDLEvery time.Duration
	// NoRename leaves renameCollection out of the DDL, so that nothing may
	// need repair at commit.
	NoRename bool
	Gen      GenOptions
}

// Counts is what a workload did.
type Counts struct {
	Ops, DDL, Failed int64
	// Renamed counts documents moved by renameCollection. FerretDB logs no
	// oplog entry for them, so the engine sees the rename as drop + create
	// and the commit's verification re-copies them (docs/design/capture.md):
	// the documented bound on the commit's repaired count.
	Renamed int64
	// ByKind counts acknowledged operations by kind.
	ByKind map[string]int64
}

// Workload writes to the source until stopped.
type Workload struct {
	opts   WorkloadOptions
	client *mongo.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// ddlMu is held shared by each write and exclusively by each DDL
	// operation: a write never lands in a collection a DDL operation has
	// just dropped or renamed away (it would recreate it between two
	// catalog listings, which FerretDB's oplog cannot show: the commit
	// would repair it; docs/design/testing.md).
	ddlMu sync.RWMutex

	mu      sync.Mutex // guards live, byKind, errs, next, targets
	live    []string   // "db.coll" the workload writes to
	byKind  map[string]int64
	errs    []string
	next    int      // suffix of the next collection name
	targets []string // collections renames created

	ops, ddl, failed, renamed atomic.Int64
}

// Seed fills every starting collection with n generated documents and the
// special _ids, and returns the collections.
func Seed(ctx context.Context, c *mongo.Client, o WorkloadOptions, n int) ([]string, error) {
	var names []string
	for di, db := range o.Databases {
		for ci := range o.Collections {
			ns := fmt.Sprintf("%s.c%d", db, ci)
			names = append(names, ns)
			g := NewGenerator(o.Seed, uint64(1000+di*100+ci), o.Gen)
			var docs []any
			var bytes int
			flush := func() error {
				if len(docs) == 0 {
					return nil
				}
				_, err := coll(c, ns).InsertMany(ctx, docs)
				docs, bytes = nil, 0
				return err
			}
			for _, id := range SpecialIDs() {
				docs = append(docs, g.Document(id))
			}
			base := int64(1<<29 + (di*16+ci)<<22)
			for k := range n {
				d := g.Document(ID(base + int64(k)))
				raw, err := bson.Marshal(d)
				if err != nil {
					return nil, err
				}
				if bytes+len(raw) > 8<<20 {
					if err := flush(); err != nil {
						return nil, fmt.Errorf("seed %s: %w", ns, err)
					}
				}
				docs = append(docs, bson.Raw(raw))
				bytes += len(raw)
			}
			if err := flush(); err != nil {
				return nil, fmt.Errorf("seed %s: %w", ns, err)
			}
			if ci == 0 {
				if _, err := coll(c, ns).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "cnt", Value: 1}}}); err != nil {
					return nil, fmt.Errorf("seed %s: index: %w", ns, err)
				}
			}
		}
	}
	return names, nil
}

// StartWorkload starts the writers and the DDL goroutine on the
// collections in live.
func StartWorkload(ctx context.Context, c *mongo.Client, o WorkloadOptions, live []string) *Workload {
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.Rate <= 0 {
		o.Rate = 40
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Workload{opts: o, client: c, cancel: cancel, live: slices.Clone(live), byKind: map[string]int64{}}
	for i := range o.Writers {
		w.wg.Add(1)
		go w.writer(ctx, i)
	}
	if o.DDLEvery > 0 {
		w.wg.Add(1)
		go w.ddlLoop(ctx)
	}
	return w
}

// Stop ends the workload after the operations in flight and returns its counts.
func (w *Workload) Stop() Counts {
	w.cancel()
	w.wg.Wait()
	return w.Counts()
}

// Counts returns what the workload did so far.
func (w *Workload) Counts() Counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := Counts{Ops: w.ops.Load(), DDL: w.ddl.Load(), Failed: w.failed.Load(), Renamed: w.renamed.Load(), ByKind: map[string]int64{}}
	for k, v := range w.byKind {
		c.ByKind[k] = v
	}
	return c
}

// RenameTargets are the collections renames created.
func (w *Workload) RenameTargets() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.targets)
}

// Errors returns a sample of the failed operations (a failure is not a
// finding by itself: a write racing a drop may fail on the server).
func (w *Workload) Errors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.errs)
}

func (w *Workload) done(kind string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failed.Add(1)
		if len(w.errs) < 20 {
			w.errs = append(w.errs, kind+": "+err.Error())
		}
		return
	}
	w.byKind[kind]++
}

func (w *Workload) pickLive(r *rand.Rand) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.live) == 0 {
		return ""
	}
	return w.live[r.IntN(len(w.live))]
}

// keepsSome reports whether a live collection remains once those remove
// matches are dropped: the drops never empty the workload, whose round
// would then compare nothing.
func (w *Workload) keepsSome(remove func(string) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.live, func(s string) bool { return !remove(s) })
}

// pace sleeps until the next tick of a writer at rate/writers per second.
func pace(ctx context.Context, r *rand.Rand, interval time.Duration) bool {
	d := time.Duration(float64(interval) * (0.5 + r.Float64()))
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (w *Workload) writer(ctx context.Context, n int) {
	defer w.wg.Done()
	g := NewGenerator(w.opts.Seed, uint64(n)+1, w.opts.Gen)
	r := g.Rand()
	interval := time.Duration(float64(time.Second) * float64(w.opts.Writers) / w.opts.Rate)
	mine := map[string][]any{} // ns → _ids this writer inserted and has not deleted
	next := int64(n) << 24
	for pace(ctx, r, interval) {
		w.ddlMu.RLock()
		ns := w.pickLive(r)
		if ns == "" {
			w.ddlMu.RUnlock()
			continue
		}
		ids := mine[ns]
		op := []string{"insert", "insert", "insertMany", "set", "unset", "inc", "replace", "delete", "grow"}[r.IntN(9)]
		if op == "grow" && (g.opts.LargeEvery == 0 || r.IntN(4) != 0) {
			op = "set"
		}
		if len(ids) == 0 {
			op = "insert"
		}
		c := coll(w.client, ns)
		// The write is not cancelled by Stop: a cancelled write may still
		// land, and nothing then says whether it did.
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		var err error
		switch op {
		case "insert":
			next++
			_, err = c.InsertOne(octx, g.Document(ID(next)))
			if err == nil {
				mine[ns] = append(ids, ID(next))
			}
		case "insertMany":
			var docs []any
			var added []any
			for range 2 + r.IntN(8) {
				next++
				docs = append(docs, g.Document(ID(next)))
				added = append(added, ID(next))
			}
			_, err = c.InsertMany(octx, docs)
			if err == nil {
				mine[ns] = append(ids, added...)
			}
		case "set":
			_, err = c.UpdateOne(octx, bson.D{{Key: "_id", Value: ids[r.IntN(len(ids))]}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "f_set", Value: g.value(0, true)}, {Key: "sub.x", Value: g.value(2, true)}}}})
		case "unset":
			_, err = c.UpdateOne(octx, bson.D{{Key: "_id", Value: ids[r.IntN(len(ids))]}},
				bson.D{{Key: "$unset", Value: bson.D{{Key: "f_set", Value: ""}, {Key: "deep", Value: ""}}}})
		case "inc":
			_, err = c.UpdateOne(octx, bson.D{{Key: "_id", Value: ids[r.IntN(len(ids))]}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "cnt", Value: int32(1)}}}})
		case "replace":
			id := ids[r.IntN(len(ids))]
			_, err = c.ReplaceOne(octx, bson.D{{Key: "_id", Value: id}}, g.Document(id)[1:])
		case "delete":
			i := r.IntN(len(ids))
			_, err = c.DeleteOne(octx, bson.D{{Key: "_id", Value: ids[i]}})
			if err == nil {
				ids[i] = ids[len(ids)-1]
				mine[ns] = ids[:len(ids)-1]
			}
		case "grow":
			_, err = c.UpdateOne(octx, bson.D{{Key: "_id", Value: ids[r.IntN(len(ids))]}}, g.Grown(g.opts.MaxDocBytes/2+r.IntN(g.opts.MaxDocBytes/2)))
		}
		cancel()
		w.ddlMu.RUnlock()
		w.ops.Add(1)
		w.done(op, err)
	}
}

// ddlLoop creates, drops and renames collections, drops a database, and
// creates and drops indexes, in collections the writers write to.
func (w *Workload) ddlLoop(ctx context.Context) {
	defer w.wg.Done()
	g := NewGenerator(w.opts.Seed, 999, w.opts.Gen)
	r := g.Rand()
	for pace(ctx, r, w.opts.DDLEvery) {
		kind := []string{"create", "create", "drop", "rename", "createIndex", "createIndex", "dropIndex", "dropDatabase"}[r.IntN(8)]
		if kind == "rename" && w.opts.NoRename {
			kind = "create"
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		w.ddlMu.Lock()
		err := w.ddl1(dctx, g, kind)
		w.ddlMu.Unlock()
		cancel()
		w.ddl.Add(1)
		w.ops.Add(1)
		w.done(kind, err)
	}
}

func (w *Workload) newName(db string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	return fmt.Sprintf("%s.n%d", db, w.next)
}

func (w *Workload) setLive(add string, remove func(string) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if remove != nil {
		w.live = slices.DeleteFunc(w.live, remove)
	}
	if add != "" {
		w.live = append(w.live, add)
	}
}

func (w *Workload) ddl1(ctx context.Context, g *Generator, kind string) error {
	r := g.Rand()
	db := w.opts.Databases[r.IntN(len(w.opts.Databases))]
	switch kind {
	case "create":
		ns := w.newName(db)
		_, name, _ := strings.Cut(ns, ".")
		var o *options.CreateCollectionOptionsBuilder
		if r.IntN(4) == 0 {
			o = options.CreateCollection().SetCapped(true).SetSizeInBytes(1 << 30).SetMaxDocuments(100_000) // never trimmed in a round: trimming is each server's own
		}
		if err := w.client.Database(db).CreateCollection(ctx, name, o); err != nil {
			return err
		}
		var docs []any
		for k := range 1 + r.IntN(20) {
			docs = append(docs, g.Document(fmt.Sprintf("%s-%d", ns, k)))
		}
		if _, err := coll(w.client, ns).InsertMany(ctx, docs); err != nil {
			return err
		}
		w.setLive(ns, nil)
		return nil
	case "drop":
		ns := w.pickLive(r)
		gone := func(s string) bool { return s == ns }
		if ns == "" || !w.keepsSome(gone) {
			return nil
		}
		w.setLive("", gone)
		return coll(w.client, ns).Drop(ctx)
	case "rename":
		from := w.pickLive(r)
		if from == "" {
			return nil
		}
		fdb, _, _ := strings.Cut(from, ".")
		to := w.newName(fdb)
		w.setLive("", func(s string) bool { return s == from })
		err := w.client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: from}, {Key: "to", Value: to}}).Err()
		if err != nil {
			return err
		}
		n, err := coll(w.client, to).CountDocuments(ctx, bson.D{})
		if err != nil {
			return err
		}
		w.renamed.Add(n)
		w.mu.Lock()
		w.targets = append(w.targets, to)
		w.mu.Unlock()
		w.setLive(to, nil)
		return nil
	case "createIndex":
		ns := w.pickLive(r)
		if ns == "" {
			return nil
		}
		keys := [][]string{{"cnt"}, {"f_set"}, {"cnt", "f_set"}, {"sub.x"}}[r.IntN(4)]
		var k bson.D
		for _, f := range keys {
			k = append(k, bson.E{Key: f, Value: []int32{1, -1}[r.IntN(2)]})
		}
		_, err := coll(w.client, ns).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: k})
		return err
	case "dropIndex":
		ns := w.pickLive(r)
		if ns == "" {
			return nil
		}
		specs, err := coll(w.client, ns).Indexes().ListSpecifications(ctx)
		if err != nil {
			return err
		}
		var names []string
		for _, s := range specs {
			if s.Name != "_id_" {
				names = append(names, s.Name)
			}
		}
		if len(names) == 0 {
			return nil
		}
		return coll(w.client, ns).Indexes().DropOne(ctx, names[r.IntN(len(names))])
	case "dropDatabase":
		if len(w.opts.Databases) < 2 || db == w.opts.Databases[0] {
			return nil // keep the first database: the writers need somewhere to write
		}
		gone := func(s string) bool { return strings.HasPrefix(s, db+".") }
		if !w.keepsSome(gone) {
			return nil
		}
		w.setLive("", gone)
		return w.client.Database(db).Drop(ctx)
	}
	return errors.New("unknown DDL " + kind)
}
