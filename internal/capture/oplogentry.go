package capture

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// oplogEntry is the part of an oplog entry the reader uses.
type oplogEntry struct {
	ID   bson.RawValue  `bson:"_id"` // FerretDB: ObjectId per entry; MongoDB: absent
	Op   string         `bson:"op"`
	NS   string         `bson:"ns"`
	TS   bson.Timestamp `bson:"ts"`
	Wall time.Time      `bson:"wall"`
	O    bson.Raw       `bson:"o"`
	O2   bson.Raw       `bson:"o2"`

	// Transactions.
	LSID       bson.Raw `bson:"lsid"`
	TxnNumber  int64    `bson:"txnNumber"`
	PartialTxn bool     `bson:"partialTxn"`
	Prepare    bool     `bson:"prepare"`
}

// entryParser turns oplog entries into events. It holds the state of
// multi-entry transactions between entries; it is not safe for concurrent use.
type entryParser struct {
	filter     Filter
	fullImages bool                  // a $v:1 $set carrying _id is a post-image (FerretDB)
	txns       map[string][]bson.Raw // lsid+txnNumber → buffered applyOps operations
}

func newEntryParser(filter Filter, fullImages bool) *entryParser {
	if filter == nil {
		filter = InScope("")
	}
	return &entryParser{filter: filter, fullImages: fullImages, txns: map[string][]bson.Raw{}}
}

// parse returns the events one entry stands for (none for no-ops, entries out
// of scope, and transaction parts still waiting for their commit).
func (p *entryParser) parse(e oplogEntry) ([]migration.Event, error) {
	pos := migration.Position{TS: e.TS}
	switch e.Op {
	case "n":
		return []migration.Event{{Op: migration.OpNoop, Pos: pos, Wall: e.Wall}}, nil
	case "i", "u", "d":
		ns, err := migration.ParseNamespace(e.NS)
		if err != nil {
			return nil, fmt.Errorf("oplog entry at %s: %w", migration.FormatTS(e.TS), err)
		}
		if !p.filter(ns) {
			return nil, nil
		}
		ev, err := p.crud(e.Op, ns, e.O, e.O2)
		if err != nil {
			return nil, fmt.Errorf("oplog entry at %s on %s: %w", migration.FormatTS(e.TS), ns, err)
		}
		ev.Pos, ev.Wall = pos, e.Wall
		return []migration.Event{ev}, nil
	case "c":
		evs, err := p.command(e)
		if err != nil {
			return nil, fmt.Errorf("oplog command at %s on %s: %w", migration.FormatTS(e.TS), e.NS, err)
		}
		for i := range evs {
			evs[i].Pos, evs[i].Wall = pos, e.Wall
		}
		return evs, nil
	}
	return nil, nil
}

// crud normalizes an insert, update or delete.
func (p *entryParser) crud(op string, ns migration.Namespace, o, o2 bson.Raw) (migration.Event, error) {
	ev := migration.Event{NS: ns}
	switch op {
	case "i":
		id, err := o.LookupErr("_id")
		if err != nil {
			return ev, fmt.Errorf("insert without _id")
		}
		ev.Op, ev.FullDocument = migration.OpInsert, o
		ev.DocumentKey = docKey(o2, id)
	case "d":
		id, err := o.LookupErr("_id")
		if err != nil {
			return ev, fmt.Errorf("delete without _id")
		}
		ev.Op, ev.DocumentKey = migration.OpDelete, docKey(o, id)
	case "u":
		id, err := o2.LookupErr("_id")
		if err != nil {
			return ev, fmt.Errorf("update without o2._id")
		}
		ev.DocumentKey = docKey(o2, id)
		return p.update(ev, o, id)
	}
	return ev, nil
}

// docKey is o2 when it holds the key (shard key fields included), else {_id}.
func docKey(key bson.Raw, id bson.RawValue) bson.Raw {
	if len(key) > 0 {
		if _, err := key.LookupErr("_id"); err == nil {
			return key
		}
	}
	k, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	return k
}

// update reads the three shapes of an update's o field: a replacement
// document, $v:1 modifiers ($set/$unset) and $v:2 diffs.
func (p *entryParser) update(ev migration.Event, o bson.Raw, id bson.RawValue) (migration.Event, error) {
	elems, err := o.Elements()
	if err != nil {
		return ev, err
	}
	if len(elems) == 0 || !strings.HasPrefix(elems[0].Key(), "$") {
		ev.Op, ev.FullDocument = migration.OpReplace, o
		return ev, nil
	}
	version := int32(1)
	if v, err := o.LookupErr("$v"); err == nil {
		if n, ok := v.AsInt64OK(); ok {
			version = int32(n)
		}
	}
	ev.Op = migration.OpUpdate
	if version == 2 {
		diff, ok := o.Lookup("diff").DocumentOK()
		if !ok {
			return ev, fmt.Errorf("$v:2 update without a diff document")
		}
		ud := &migration.UpdateDescription{}
		var set bson.D
		if err := walkDiff(diff, "", &set, ud); err != nil {
			return ev, err
		}
		if ud.UpdatedFields, err = bson.Marshal(set); err != nil {
			return ev, err
		}
		ev.Update = ud
		return ev, nil
	}
	setDoc, hasSet := o.Lookup("$set").DocumentOK()
	if p.fullImages && hasSet {
		if img, err := setDoc.LookupErr("_id"); err == nil && img.Equal(id) {
			// FerretDB logs the whole post-image as $set: a replacement of the
			// document's content (fields removed by $unset are simply absent).
			ev.FullDocument = setDoc
			return ev, nil
		}
	}
	ud := &migration.UpdateDescription{}
	for _, el := range elems {
		switch el.Key() {
		case "$v":
		case "$set":
			ud.UpdatedFields = setDoc
		case "$unset":
			un, ok := el.Value().DocumentOK()
			if !ok {
				return ev, fmt.Errorf("$unset is not a document")
			}
			fields, err := un.Elements()
			if err != nil {
				return ev, err
			}
			for _, f := range fields {
				ud.RemovedFields = append(ud.RemovedFields, f.Key())
			}
		default:
			return ev, fmt.Errorf("unsupported update modifier %s in oplog", el.Key())
		}
	}
	if ud.UpdatedFields == nil {
		ud.UpdatedFields, _ = bson.Marshal(bson.D{})
	}
	ev.Update = ud
	return ev, nil
}

// walkDiff flattens a $v:2 diff into dotted updated fields, removed fields
// and truncated arrays. See docs/design/capture.md for the format.
func walkDiff(diff bson.Raw, prefix string, set *bson.D, ud *migration.UpdateDescription) error {
	elems, err := diff.Elements()
	if err != nil {
		return err
	}
	isArray := false
	if v, err := diff.LookupErr("a"); err == nil && v.Type == bson.TypeBoolean && v.Boolean() {
		isArray = true
	}
	for _, el := range elems {
		k := el.Key()
		switch {
		case k == "a" && isArray:
		case k == "d":
			fields, err := el.Value().Document().Elements()
			if err != nil {
				return err
			}
			for _, f := range fields {
				ud.RemovedFields = append(ud.RemovedFields, prefix+f.Key())
			}
		case k == "u" || k == "i":
			fields, err := el.Value().Document().Elements()
			if err != nil {
				return err
			}
			for _, f := range fields {
				*set = append(*set, bson.E{Key: prefix + f.Key(), Value: f.Value()})
			}
		case k == "l" && isArray:
			n, ok := el.Value().AsInt64OK()
			if !ok {
				return fmt.Errorf("array diff at %q: bad length", prefix)
			}
			ud.TruncatedArrays = append(ud.TruncatedArrays, migration.TruncatedArray{Field: strings.TrimSuffix(prefix, "."), NewSize: int32(n)})
		case isArray && strings.HasPrefix(k, "u"):
			*set = append(*set, bson.E{Key: prefix + k[1:], Value: el.Value()})
		case strings.HasPrefix(k, "s"):
			sub, ok := el.Value().DocumentOK()
			if !ok {
				return fmt.Errorf("diff at %q: subdiff %s is not a document", prefix, k)
			}
			if err := walkDiff(sub, prefix+k[1:]+".", set, ud); err != nil {
				return err
			}
		default:
			return fmt.Errorf("diff at %q: unknown field %q", prefix, k)
		}
	}
	return nil
}

// command normalizes a "c" entry: DDL and transactions.
func (p *entryParser) command(e oplogEntry) ([]migration.Event, error) {
	db, _, _ := strings.Cut(e.NS, ".")
	elems, err := e.O.Elements()
	if err != nil || len(elems) == 0 {
		return nil, fmt.Errorf("empty command: %v", err)
	}
	name := elems[0].Key()
	str := func(key string) string { s, _ := e.O.Lookup(key).StringValueOK(); return s }
	collNS := migration.Namespace{DB: db, Coll: str(name)}
	keep := func(evs ...migration.Event) []migration.Event {
		var out []migration.Event
		for _, ev := range evs {
			if p.filter(ev.NS) || (ev.Op == migration.OpRename && p.filter(ev.To)) {
				out = append(out, ev)
			}
		}
		return out
	}
	switch name {
	case "create":
		opts, err := withoutKeys(e.O, "create", "idIndex")
		return keep(migration.Event{Op: migration.OpCreate, NS: collNS, Options: opts}), err
	case "drop":
		return keep(migration.Event{Op: migration.OpDrop, NS: collNS}), nil
	case "renameCollection":
		from, err1 := migration.ParseNamespace(str("renameCollection"))
		to, err2 := migration.ParseNamespace(str("to"))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("renameCollection: bad namespaces")
		}
		switch {
		case p.filter(from) && p.filter(to):
			return []migration.Event{{Op: migration.OpRename, NS: from, To: to}}, nil
		case p.filter(from):
			return []migration.Event{{Op: migration.OpDrop, NS: from}}, nil
		case p.filter(to):
			return nil, fmt.Errorf("collection renamed into scope from %s to %s: its documents were never captured; restart the migration", from, to)
		}
		return nil, nil
	case "dropDatabase":
		return keep(migration.Event{Op: migration.OpDropDatabase, NS: migration.Namespace{DB: db}}), nil
	case "createIndexes":
		spec, err := withoutKeys(e.O, "createIndexes", "v", "ns")
		return keep(migration.Event{Op: migration.OpCreateIndexes, NS: collNS, Indexes: []bson.Raw{spec}}), err
	case "commitIndexBuild":
		arr, ok := e.O.Lookup("indexes").ArrayOK()
		if !ok {
			return nil, fmt.Errorf("commitIndexBuild without indexes")
		}
		vals, _ := arr.Values()
		ev := migration.Event{Op: migration.OpCreateIndexes, NS: collNS}
		for _, v := range vals {
			spec, err := withoutKeys(v.Document(), "v", "ns")
			if err != nil {
				return nil, err
			}
			ev.Indexes = append(ev.Indexes, spec)
		}
		return keep(ev), nil
	case "dropIndexes", "deleteIndexes":
		ev := migration.Event{Op: migration.OpDropIndexes, NS: collNS}
		switch v := e.O.Lookup("index"); v.Type {
		case bson.TypeString:
			ev.IndexNames = []string{v.StringValue()}
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			for _, n := range vals {
				ev.IndexNames = append(ev.IndexNames, n.StringValue())
			}
		default:
			ev.IndexNames = []string{"*"}
		}
		return keep(ev), nil
	case "collMod":
		opts, err := withoutKeys(e.O, "collMod")
		return keep(migration.Event{Op: migration.OpModify, NS: collNS, Options: opts}), err
	case "applyOps":
		return p.applyOps(e)
	case "commitTransaction":
		return p.flushTxn(e, true)
	case "abortTransaction":
		return p.flushTxn(e, false)
	case "startIndexBuild", "abortIndexBuild", "emptycapped", "convertToCapped":
		return nil, nil
	}
	return nil, nil
}

func txnKey(e oplogEntry) string { return fmt.Sprintf("%x/%d", []byte(e.LSID), e.TxnNumber) }

// applyOps unpacks a transaction. Parts of a multi-entry or prepared
// transaction are held until the entry that commits it.
func (p *entryParser) applyOps(e oplogEntry) ([]migration.Event, error) {
	arr, ok := e.O.Lookup("applyOps").ArrayOK()
	if !ok {
		return nil, fmt.Errorf("applyOps is not an array")
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, err
	}
	ops := make([]bson.Raw, 0, len(vals))
	for _, v := range vals {
		ops = append(ops, v.Document())
	}
	if e.PartialTxn || e.Prepare {
		k := txnKey(e)
		p.txns[k] = append(p.txns[k], ops...)
		return nil, nil
	}
	if len(e.LSID) > 0 {
		k := txnKey(e)
		ops = append(p.txns[k], ops...)
		delete(p.txns, k)
	}
	return p.innerOps(e, ops)
}

func (p *entryParser) flushTxn(e oplogEntry, commit bool) ([]migration.Event, error) {
	k := txnKey(e)
	ops := p.txns[k]
	delete(p.txns, k)
	if !commit {
		return nil, nil
	}
	return p.innerOps(e, ops)
}

func (p *entryParser) innerOps(e oplogEntry, ops []bson.Raw) ([]migration.Event, error) {
	var out []migration.Event
	for _, raw := range ops {
		var in oplogEntry
		if err := bson.Unmarshal(raw, &in); err != nil {
			return nil, fmt.Errorf("applyOps operation: %w", err)
		}
		in.TS, in.Wall = e.TS, e.Wall
		evs, err := p.parse(in)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// withoutKeys copies doc without the named top-level keys.
func withoutKeys(doc bson.Raw, keys ...string) (bson.Raw, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	d := bson.D{}
	for _, el := range elems {
		skip := false
		for _, k := range keys {
			if el.Key() == k {
				skip = true
			}
		}
		if !skip {
			d = append(d, bson.E{Key: el.Key(), Value: el.Value()})
		}
	}
	return bson.Marshal(d)
}

// sortEvents orders events by position; at one timestamp creates come
// first, then data changes, then the other catalog changes (a synthesized
// DDL event shares the timestamp of the newest entry seen when it was
// noticed).
func sortEvents(evs []migration.Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		if c := migration.CompareTS(evs[i].Pos.TS, evs[j].Pos.TS); c != 0 {
			return c < 0
		}
		return sortRank(evs[i].Op) < sortRank(evs[j].Op)
	})
}

// sortRank orders events at one position: creates, then data, then the
// other DDL (a collection's data written before its drop is applied
// before the drop; a collection exists before its first document).
func sortRank(op migration.Op) int {
	switch {
	case op == migration.OpCreate:
		return 0
	case !op.IsDDL():
		return 1
	default:
		return 2
	}
}
