package apply

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// docState is where one document stands after folding a batch's events.
type docState struct {
	id      bson.RawValue
	image   bson.Raw // final document, when known
	deleted bool
	// pending are updates to apply on top of the destination's current
	// document (no image in the batch to apply them to).
	pending []*migration.UpdateDescription
	// fromSource: the state must be read from the source.
	fromSource bool
	// last is the position of the document's last event in the batch.
	last migration.Position
}

// nsBatch is one namespace's part of a batch, documents in first-seen order.
type nsBatch struct {
	ns    migration.Namespace
	order []string
	docs  map[string]*docState
}

// fold reduces events to one final state per document, in event order.
func fold(events []migration.Event) ([]*nsBatch, error) {
	var out []*nsBatch
	byNS := map[migration.Namespace]*nsBatch{}
	for _, ev := range events {
		b := byNS[ev.NS]
		if b == nil {
			b = &nsBatch{ns: ev.NS, docs: map[string]*docState{}}
			byNS[ev.NS] = b
			out = append(out, b)
		}
		id, err := ev.DocumentKey.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("%s event on %s without _id in its document key", ev.Op, ev.NS)
		}
		key := string(append([]byte{byte(id.Type)}, id.Value...))
		d := b.docs[key]
		if d == nil {
			d = &docState{id: id}
			b.docs[key] = d
			b.order = append(b.order, key)
		}
		switch {
		case ev.Op == migration.OpDelete:
			*d = docState{id: id, deleted: true}
		case ev.FullDocument != nil:
			*d = docState{id: id, image: ev.FullDocument}
		case ev.Op == migration.OpUpdate && ev.Update != nil:
			switch {
			case d.fromSource:
			case d.deleted:
				// An update of a deleted document: the source's state decides.
				d.deleted, d.fromSource = false, true
			case d.image != nil:
				img, err := applyUpdate(d.image, ev.Update)
				if err != nil {
					d.image, d.fromSource = nil, true
				} else {
					d.image = img
				}
			default:
				d.pending = append(d.pending, ev.Update)
			}
		default:
			return nil, fmt.Errorf("%s event on %s carries neither a document nor an update description", ev.Op, ev.NS)
		}
		d.last = ev.Pos
	}
	return out, nil
}

// write applies one worker's batch to the destination.
func (p *Pool) write(ctx context.Context, events []migration.Event) error {
	batches, err := fold(events)
	if err != nil {
		return err
	}
	for _, b := range batches {
		start := time.Now()
		if err := p.writeNS(ctx, b); err != nil {
			return err
		}
		p.logger.Debug("batch written", "ns", b.ns.String(), "documents", len(b.order), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (p *Pool) writeNS(ctx context.Context, b *nsBatch) error {
	coll := p.dst.Database(b.ns.DB).Collection(b.ns.Coll)
	// Updates without an image: read the destination's documents with one $in.
	var need []*docState
	for _, k := range b.order {
		if d := b.docs[k]; len(d.pending) > 0 && !d.fromSource {
			need = append(need, d)
		}
	}
	if len(need) > 0 {
		cur, err := p.findIn(ctx, coll, need, "read destination documents to update")
		if err != nil {
			return err
		}
		for _, d := range need {
			base, ok := cur[idKey(d.id)]
			if !ok {
				d.fromSource = true // missing target: the source's state decides
				continue
			}
			img := base
			for _, u := range d.pending {
				if img, err = applyUpdate(img, u); err != nil {
					break
				}
			}
			if err != nil {
				d.fromSource = true
				continue
			}
			d.image, d.pending = img, nil
		}
	}
	// Documents whose state cannot be derived safely: the source's current state.
	var fromSrc []*docState
	for _, k := range b.order {
		if d := b.docs[k]; d.fromSource {
			fromSrc = append(fromSrc, d)
		}
	}
	if len(fromSrc) > 0 {
		if p.opts.Source == nil {
			return fmt.Errorf("apply update on %s: the update cannot be applied to the destination's document and no source is configured to read its current state", b.ns)
		}
		src := p.opts.Source.Database(b.ns.DB).Collection(b.ns.Coll)
		cur, err := p.findIn(ctx, src, fromSrc, "read current source documents")
		if err != nil {
			return err
		}
		for _, d := range fromSrc {
			if img, ok := cur[idKey(d.id)]; ok {
				d.image, d.deleted = img, false
			} else {
				d.image, d.deleted = nil, true
			}
			d.pending, d.fromSource = nil, false
		}
		p.logger.Debug("documents read from the source", "ns", b.ns.String(), "count", len(fromSrc))
	}
	switch p.opts.Mode {
	case ModeBulk:
		return p.writeBulk(ctx, coll, b)
	default:
		return p.writeIn(ctx, coll, b)
	}
}

func idKey(id bson.RawValue) string { return string(append([]byte{byte(id.Type)}, id.Value...)) }

// maxInIDBytes bounds the _id bytes of one $in filter, far below the
// 16 MiB command limit whatever the _ids weigh.
const maxInIDBytes = 1 << 20

// findIn reads the documents of ds from coll with {_id: {$in: …}}: one
// query unless the _ids outgrow maxInIDBytes, each reply sized by the bytes
// of the documents before it (mdb.Find), so a batch of documents near
// 16 MiB never makes a reply the driver refuses.
func (p *Pool) findIn(ctx context.Context, coll *mongo.Collection, ds []*docState, what string) (map[string]bson.Raw, error) {
	out := map[string]bson.Raw{}
	for len(ds) > 0 {
		var ids bson.A
		n := 0
		for _, d := range ds {
			if len(ids) > 0 && n+len(d.id.Value) > maxInIDBytes {
				break
			}
			ids = append(ids, d.id)
			n += len(d.id.Value)
		}
		ds = ds[len(ids):]
		err := p.retry(ctx, what+" in "+coll.Database().Name()+"."+coll.Name(), func(ctx context.Context) error {
			cur, err := mdb.Find(ctx, coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
				mdb.NewBatchSizer(mdb.SizerOptions{MaxDocs: len(ids)}))
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			for cur.Next(ctx) {
				doc := append(bson.Raw(nil), cur.Current()...)
				out[idKey(doc.Lookup("_id"))] = doc
			}
			return cur.Err()
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// maxKeyedDeletes is the largest batch DeleteIDs deletes with per-_id
// statements. FerretDB filters a string or ObjectId _id inside SQLite
// (~1.4 µs a row, no index is used) but decodes every document to filter an
// $in (~14 µs a row): measured at 20k documents, one per-_id delete took
// 27 ms, an $in of 4 to 128 _ids 280–400 ms.
const maxKeyedDeletes = 8

// DeleteIDs deletes the documents with the given _ids (bson.RawValue) in
// one command, the cheapest way on FerretDB: per-_id statements for up to
// maxKeyedDeletes _ids that are all strings or ObjectIds, else one $in.
func DeleteIDs(ctx context.Context, coll *mongo.Collection, ids []bson.RawValue) error {
	keyed := len(ids) <= maxKeyedDeletes
	for _, id := range ids {
		keyed = keyed && (id.Type == bson.TypeString || id.Type == bson.TypeObjectID)
	}
	if !keyed {
		_, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		return err
	}
	models := make([]mongo.WriteModel, len(ids))
	for i, id := range ids {
		models[i] = mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}})
	}
	_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return err
}

// writeIn deletes every document of the batch (DeleteIDs) and inserts the
// final images with one unordered insertMany. Replaying it is harmless
// while the events are still in the source's oplog; for replays it may not
// hold (Options.Replayed) documents already equal to their image are left
// alone.
func (p *Pool) writeIn(ctx context.Context, coll *mongo.Collection, b *nsBatch) error {
	same, err := p.alreadyWritten(ctx, coll, b)
	if err != nil {
		return err
	}
	ids := make([]bson.RawValue, 0, len(b.order))
	var docs []any
	for _, k := range b.order {
		d := b.docs[k]
		if same[k] {
			continue
		}
		ids = append(ids, d.id)
		if !d.deleted && d.image != nil {
			docs = append(docs, d.image)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return p.retry(ctx, "write batch to "+b.ns.String(), func(ctx context.Context) error {
		if err := DeleteIDs(ctx, coll, ids); err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	})
}

// alreadyWritten is the set of b's documents whose every event is a
// possible replay (at or before Options.Replayed) and whose final image the
// destination already holds byte for byte: one $in read for all of them.
func (p *Pool) alreadyWritten(ctx context.Context, coll *mongo.Collection, b *nsBatch) (map[string]bool, error) {
	if p.opts.Replayed.IsZero() {
		return nil, nil
	}
	var replayed []*docState
	for _, k := range b.order {
		if d := b.docs[k]; d.image != nil && migration.CompareTS(d.last.TS, p.opts.Replayed.TS) <= 0 {
			replayed = append(replayed, d)
		}
	}
	if len(replayed) == 0 {
		return nil, nil
	}
	cur, err := p.findIn(ctx, coll, replayed, "read destination documents a replay may already hold")
	if err != nil {
		return nil, err
	}
	same := map[string]bool{}
	for _, d := range replayed {
		k := idKey(d.id)
		if have, ok := cur[k]; ok && bytes.Equal(have, d.image) {
			same[k] = true
		}
	}
	return same, nil
}

// writeBulk sends one unordered bulk write of upserting replaces and deletes.
func (p *Pool) writeBulk(ctx context.Context, coll *mongo.Collection, b *nsBatch) error {
	models := make([]mongo.WriteModel, 0, len(b.order))
	for _, k := range b.order {
		d := b.docs[k]
		filter := bson.D{{Key: "_id", Value: d.id}}
		if d.deleted || d.image == nil {
			models = append(models, mongo.NewDeleteOneModel().SetFilter(filter))
		} else {
			models = append(models, mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(d.image).SetUpsert(true))
		}
	}
	return p.retry(ctx, "write batch to "+b.ns.String(), func(ctx context.Context) error {
		_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		return err
	})
}
