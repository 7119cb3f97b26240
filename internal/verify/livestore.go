package verify

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// The continuous verifier's durable state, in the destination's metadata
// database: one document per namespace (and one for the source process) in
// LiveCollection, and the _ids of changed documents in batches in
// LiveKeysCollection, each batch tagged with its namespace's generation.
const (
	LiveCollection     = "verify_live"
	LiveKeysCollection = "verify_live_keys"
)

// liveDoc is one namespace's durable state.
type liveDoc struct {
	ID   string `bson:"_id"` // "ns:" + namespace
	DB   string `bson:"db"`
	Coll string `bson:"coll"`
	Gen  int64  `bson:"gen"`
	Done bool   `bson:"done"`
	// Busy: a recheck was in flight; its documents are not in the batches.
	Busy bool   `bson:"busy"`
	Why  string `bson:"why,omitempty"`
	Src  int64  `bson:"src"`
	Dst  int64  `bson:"dst"`
}

// keysDoc is a batch of changed _ids of one namespace's generation.
type keysDoc struct {
	ID   bson.ObjectID `bson:"_id"`
	NS   string        `bson:"ns"`
	Gen  int64         `bson:"gen"`
	Keys [][]byte      `bson:"keys"`
}

type sourceDoc struct {
	ID      string      `bson:"_id"` // "source"
	Process mdb.Process `bson:"process"`
}

// keysBatchBytes bounds one keysDoc, well under the 16 MiB BSON limit.
const keysBatchBytes = 4 << 20

func (l *Live) colls() (state, keys *mongo.Collection) {
	db := l.v.opts.Destination.Database(l.v.opts.MetadataDB)
	return db.Collection(LiveCollection), db.Collection(LiveKeysCollection)
}

// ensureCollections creates the state collections up front, when change
// application starts, rather than at the first save: on FerretDB a crash
// of the destination while a collection is being created can leave it
// impossible to create ever after ("table already exists").
func (l *Live) ensureCollections(ctx context.Context) error {
	db := l.v.opts.Destination.Database(l.v.opts.MetadataDB)
	for _, name := range []string{LiveCollection, LiveKeysCollection} {
		err := l.v.retry(ctx, "create "+name, func(ctx context.Context) error {
			if err := db.CreateCollection(ctx, name); err != nil && !mdb.IsNamespaceExists(err) {
				return fmt.Errorf("create %s.%s: %w", l.v.opts.MetadataDB, name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Reset discards the durable state (a new change application).
func (l *Live) Reset(ctx context.Context) error {
	if err := l.ensureCollections(ctx); err != nil {
		return err
	}
	state, keys := l.colls()
	return l.v.retry(ctx, "reset background verification", func(ctx context.Context) error {
		if _, err := keys.DeleteMany(ctx, bson.D{}); err != nil {
			return fmt.Errorf("reset background verification: %w", err)
		}
		if _, err := state.DeleteMany(ctx, bson.D{}); err != nil {
			return fmt.Errorf("reset background verification: %w", err)
		}
		return nil
	})
}

// Load restores the state saved by Save before a restart: namespaces whose
// pass held keep it, with their changed documents; a pass in flight, a
// recheck in flight or a source that restarted since (a FerretDB source
// can lose oplog entries when it crashes) void it.
func (l *Live) Load(ctx context.Context) error {
	if err := l.ensureCollections(ctx); err != nil {
		return err
	}
	state, keys := l.colls()
	var docs []liveDoc
	var batches []keysDoc
	var src []sourceDoc
	err := l.v.retry(ctx, "load background verification", func(ctx context.Context) error {
		docs, batches, src = nil, nil, nil
		cur, err := state.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^ns:"}}}})
		if err == nil {
			err = cur.All(ctx, &docs)
		}
		if err == nil {
			cur, err = state.Find(ctx, bson.D{{Key: "_id", Value: "source"}})
		}
		if err == nil {
			err = cur.All(ctx, &src)
		}
		if err == nil {
			cur, err = keys.Find(ctx, bson.D{})
		}
		if err == nil {
			err = cur.All(ctx, &batches)
		}
		if err != nil {
			return fmt.Errorf("load background verification: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	restarted := ""
	if len(src) == 1 {
		if p, err := mdb.ReadProcess(ctx, l.v.opts.Source); err == nil && !p.SameAs(src[0].Process) {
			restarted = fmt.Sprintf("the source restarted (%s, was %s)", p, src[0].Process)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	byGen := map[string]int64{}
	for _, d := range docs {
		ns := migration.Namespace{DB: d.DB, Coll: d.Coll}
		st := l.get(ns)
		st.gen, st.savedGen, st.src, st.dst = d.Gen, d.Gen, d.Src, d.Dst
		switch {
		case restarted != "":
			st.why = restarted
		case d.Busy:
			st.why = "the engine stopped while its changed documents were compared"
		case !d.Done:
			st.why = orDefault(d.Why, "its pass did not finish before the engine stopped")
		default:
			st.done, st.changed = true, newKeySet(l.v.opts.TempDir)
			byGen[ns.String()] = d.Gen
		}
		st.dirty = !st.done // saved as voided, once
	}
	n := 0
	for _, b := range batches {
		gen, ok := byGen[b.NS]
		if !ok || gen != b.Gen {
			continue
		}
		ns, _ := parseNS(b.NS)
		st := l.ns[ns]
		for _, k := range b.Keys {
			if err := st.changed.add(k, l.opts.MemoryEntries); err != nil {
				return err
			}
			n++
		}
	}
	l.listed = false
	l.logger.Info("background verification resumed", "namespaces", len(docs), "with_pass", len(byGen), "changed_documents", n, "voided_by", restarted)
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func parseNS(s string) (migration.Namespace, bool) {
	db, coll, ok := strings.Cut(s, ".")
	return migration.Namespace{DB: db, Coll: coll}, ok
}

// Save makes durable everything observed so far. The engine calls it after
// reading the apply checkpoint and before saving it, so the durable state
// covers every event at or before the durable checkpoint; events after it
// are observed again after a restart.
func (l *Live) Save(ctx context.Context) error {
	type obsolete struct {
		ns  string
		gen int64
	}
	var docs []liveDoc
	var batches []keysDoc
	var old []obsolete
	l.mu.Lock()
	for ns, st := range l.ns {
		if len(st.unsaved) > 0 {
			b := keysDoc{ID: bson.NewObjectID(), NS: ns.String(), Gen: st.gen}
			size := 0
			for _, k := range st.unsaved {
				if size+len(k) > keysBatchBytes {
					batches = append(batches, b)
					b = keysDoc{ID: bson.NewObjectID(), NS: ns.String(), Gen: st.gen}
					size = 0
				}
				b.Keys = append(b.Keys, k)
				size += len(k) + 16
			}
			batches = append(batches, b)
			st.unsaved = nil
		}
		if st.dirty {
			docs = append(docs, liveDoc{ID: "ns:" + ns.String(), DB: ns.DB, Coll: ns.Coll, Gen: st.gen, Done: st.done, Busy: st.busy, Why: st.why, Src: st.src, Dst: st.dst})
			st.dirty = false
		}
		if st.savedGen != st.gen {
			old = append(old, obsolete{ns.String(), st.gen})
			st.savedGen = st.gen
		}
	}
	proc, saveProc := l.proc, l.procDirty
	l.procDirty = false
	l.mu.Unlock()

	state, keys := l.colls()
	// Batches first, then the states that make them current, then what
	// they replace: a crash between any two leaves a consistent state.
	// Every write is idempotent, so the whole is retried.
	return l.v.retry(ctx, "save background verification", func(ctx context.Context) error {
		for _, b := range batches {
			if _, err := keys.ReplaceOne(ctx, bson.D{{Key: "_id", Value: b.ID}}, b, options.Replace().SetUpsert(true)); err != nil {
				return fmt.Errorf("save background verification: %w", err)
			}
		}
		for _, d := range docs {
			if _, err := state.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true)); err != nil {
				return fmt.Errorf("save background verification of %s.%s: %w", d.DB, d.Coll, err)
			}
		}
		if saveProc {
			if _, err := state.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "source"}}, sourceDoc{ID: "source", Process: proc}, options.Replace().SetUpsert(true)); err != nil {
				return fmt.Errorf("save background verification: %w", err)
			}
		}
		if len(old) > 0 {
			or := make(bson.A, len(old))
			for i, o := range old {
				or[i] = bson.D{{Key: "ns", Value: o.ns}, {Key: "gen", Value: bson.D{{Key: "$lt", Value: o.gen}}}}
			}
			if _, err := keys.DeleteMany(ctx, bson.D{{Key: "$or", Value: or}}); err != nil {
				return fmt.Errorf("save background verification: %w", err)
			}
		}
		return nil
	})
}

// checkSource voids every pass when the source process changed (a
// restart: a FerretDB source can lose oplog entries when it crashes, so
// documents may have changed with no event).
func (l *Live) checkSource(ctx context.Context) {
	p, err := mdb.ReadProcess(ctx, l.v.opts.Source)
	if err != nil {
		if ctx.Err() == nil && !l.procUnknown {
			l.logger.Info("source restarts cannot be noticed: serverStatus is not available", "err", err)
			l.procUnknown = true
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.proc.Started.IsZero() && !p.SameAs(l.proc) {
		why := fmt.Sprintf("the source restarted (%s, was %s)", p, l.proc)
		for ns := range l.ns {
			l.invalidate(ns, why)
		}
	}
	if !p.SameAs(l.proc) || l.proc.Started.IsZero() {
		l.proc, l.procDirty = p, true
	}
}
