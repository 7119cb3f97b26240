package capture

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// summary is a comparable view of an event.
type summary struct {
	Op             migration.Op
	NS, To         string
	Key, Full      string
	Set            string
	Removed        []string
	Truncated      []migration.TruncatedArray
	Indexes, Names []string
	Options        string
	TS             bson.Timestamp
}

func summarize(evs []migration.Event) []summary {
	var out []summary
	for _, ev := range evs {
		s := summary{Op: ev.Op, NS: ev.NS.String(), TS: ev.Pos.TS, Names: ev.IndexNames}
		if !ev.To.IsZero() {
			s.To = ev.To.String()
		}
		if ev.DocumentKey != nil {
			s.Key = ev.DocumentKey.String()
		}
		if ev.FullDocument != nil {
			s.Full = ev.FullDocument.String()
		}
		if ev.Update != nil {
			s.Set, s.Removed, s.Truncated = ev.Update.UpdatedFields.String(), ev.Update.RemovedFields, ev.Update.TruncatedArrays
		}
		for _, ix := range ev.Indexes {
			s.Indexes = append(s.Indexes, ix.String())
		}
		if ev.Options != nil {
			s.Options = ev.Options.String()
		}
		out = append(out, s)
	}
	return out
}

// TestParseMongoDBOplog feeds entries in MongoDB's shapes (no server here
// writes them) through the parser.
func TestParseMongoDBOplog(t *testing.T) {
	t.Parallel()
	ts := bson.Timestamp{T: 100, I: 1}
	id := bson.D{{Key: "_id", Value: int32(1)}}
	entry := func(op, ns string, o, o2 bson.D) oplogEntry {
		e := oplogEntry{Op: op, NS: ns, TS: ts, O: raw(t, o)}
		if o2 != nil {
			e.O2 = raw(t, o2)
		}
		return e
	}
	s := func(d bson.D) string { return raw(t, d).String() }
	cases := []struct {
		name string
		in   []oplogEntry
		want []summary
	}{
		{"v2 diff with nested, array and delete", []oplogEntry{entry("u", "app.c", bson.D{{Key: "$v", Value: int32(2)}, {Key: "diff", Value: bson.D{
			{Key: "d", Value: bson.D{{Key: "gone", Value: false}}},
			{Key: "u", Value: bson.D{{Key: "n", Value: int32(2)}}},
			{Key: "i", Value: bson.D{{Key: "added", Value: "x"}}},
			{Key: "sa", Value: bson.D{{Key: "u", Value: bson.D{{Key: "b", Value: int32(3)}}}, {Key: "d", Value: bson.D{{Key: "c", Value: false}}}}},
			{Key: "sarr", Value: bson.D{{Key: "a", Value: true}, {Key: "l", Value: int32(2)}, {Key: "u1", Value: "y"}}},
		}}}, id)},
			[]summary{{Op: migration.OpUpdate, NS: "app.c", TS: ts, Key: s(id),
				Set:       s(bson.D{{Key: "n", Value: int32(2)}, {Key: "added", Value: "x"}, {Key: "a.b", Value: int32(3)}, {Key: "arr.1", Value: "y"}}),
				Removed:   []string{"gone", "a.c"},
				Truncated: []migration.TruncatedArray{{Field: "arr", NewSize: 2}}}}},
		{"v1 modifiers", []oplogEntry{entry("u", "app.c", bson.D{{Key: "$v", Value: int32(1)}, {Key: "$set", Value: bson.D{{Key: "a.b", Value: int32(1)}}}, {Key: "$unset", Value: bson.D{{Key: "z", Value: true}}}}, id)},
			[]summary{{Op: migration.OpUpdate, NS: "app.c", TS: ts, Key: s(id), Set: s(bson.D{{Key: "a.b", Value: int32(1)}}), Removed: []string{"z"}}}},
		{"replacement", []oplogEntry{entry("u", "app.c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "q", Value: int32(2)}}, id)},
			[]summary{{Op: migration.OpReplace, NS: "app.c", TS: ts, Key: s(id), Full: s(bson.D{{Key: "_id", Value: int32(1)}, {Key: "q", Value: int32(2)}})}}},
		{"insert with shard key o2, delete", []oplogEntry{
			entry("i", "app.c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "k", Value: "s"}}, bson.D{{Key: "k", Value: "s"}, {Key: "_id", Value: int32(1)}}),
			entry("d", "app.c", id, nil)},
			[]summary{
				{Op: migration.OpInsert, NS: "app.c", TS: ts, Key: s(bson.D{{Key: "k", Value: "s"}, {Key: "_id", Value: int32(1)}}), Full: s(bson.D{{Key: "_id", Value: int32(1)}, {Key: "k", Value: "s"}})},
				{Op: migration.OpDelete, NS: "app.c", TS: ts, Key: s(id)}}},
		{"DDL commands", []oplogEntry{
			entry("c", "app.$cmd", bson.D{{Key: "create", Value: "c"}, {Key: "capped", Value: true}, {Key: "size", Value: int32(4096)}, {Key: "idIndex", Value: bson.D{}}}, nil),
			entry("c", "app.$cmd", bson.D{{Key: "createIndexes", Value: "c"}, {Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "k", Value: int32(1)}}}, {Key: "name", Value: "k_1"}}, nil),
			entry("c", "app.$cmd", bson.D{{Key: "commitIndexBuild", Value: "c"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "j", Value: int32(1)}}}, {Key: "name", Value: "j_1"}}}}}, nil),
			entry("c", "app.$cmd", bson.D{{Key: "dropIndexes", Value: "c"}, {Key: "index", Value: "k_1"}}, nil),
			entry("c", "app.$cmd", bson.D{{Key: "renameCollection", Value: "app.c"}, {Key: "to", Value: "app.d"}}, nil),
			entry("c", "app.$cmd", bson.D{{Key: "renameCollection", Value: "app.d"}, {Key: "to", Value: "admin.d"}}, nil),
			entry("c", "app.$cmd", bson.D{{Key: "drop", Value: "e"}}, nil),
			entry("c", "app.$cmd", bson.D{{Key: "dropDatabase", Value: int32(1)}}, nil),
			entry("c", "admin.$cmd", bson.D{{Key: "drop", Value: "x"}}, nil),
		}, []summary{
			{Op: migration.OpCreate, NS: "app.c", TS: ts, Options: s(bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int32(4096)}})},
			{Op: migration.OpCreateIndexes, NS: "app.c", TS: ts, Indexes: []string{s(bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: int32(1)}}}, {Key: "name", Value: "k_1"}})}},
			{Op: migration.OpCreateIndexes, NS: "app.c", TS: ts, Indexes: []string{s(bson.D{{Key: "key", Value: bson.D{{Key: "j", Value: int32(1)}}}, {Key: "name", Value: "j_1"}})}},
			{Op: migration.OpDropIndexes, NS: "app.c", TS: ts, Names: []string{"k_1"}},
			{Op: migration.OpRename, NS: "app.c", To: "app.d", TS: ts},
			{Op: migration.OpDrop, NS: "app.d", TS: ts},
			{Op: migration.OpDrop, NS: "app.e", TS: ts},
			{Op: migration.OpDropDatabase, NS: "app.", TS: ts},
		}},
		{"transaction in two parts, then an aborted one", func() []oplogEntry {
			lsid := raw(t, bson.D{{Key: "id", Value: "s1"}})
			part := entry("c", "admin.$cmd", bson.D{{Key: "applyOps", Value: bson.A{bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: "app.c"}, {Key: "o", Value: id}}}}}, nil)
			part.LSID, part.TxnNumber, part.PartialTxn = lsid, 1, true
			commit := entry("c", "admin.$cmd", bson.D{{Key: "applyOps", Value: bson.A{bson.D{{Key: "op", Value: "d"}, {Key: "ns", Value: "app.c"}, {Key: "o", Value: id}}}}}, nil)
			commit.LSID, commit.TxnNumber = lsid, 1
			prep := entry("c", "admin.$cmd", bson.D{{Key: "applyOps", Value: bson.A{bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: "app.c"}, {Key: "o", Value: id}}}}}, nil)
			prep.LSID, prep.TxnNumber, prep.Prepare = lsid, 2, true
			abort := entry("c", "admin.$cmd", bson.D{{Key: "abortTransaction", Value: int32(1)}}, nil)
			abort.LSID, abort.TxnNumber = lsid, 2
			return []oplogEntry{part, commit, prep, abort}
		}(), []summary{
			{Op: migration.OpInsert, NS: "app.c", TS: ts, Key: s(id), Full: s(id)},
			{Op: migration.OpDelete, NS: "app.c", TS: ts, Key: s(id)},
		}},
		{"noop", []oplogEntry{entry("n", "", bson.D{{Key: "msg", Value: "periodic noop"}}, nil)}, []summary{{Op: migration.OpNoop, NS: ".", TS: ts}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newEntryParser(nil, false)
			var got []migration.Event
			for _, e := range c.in {
				evs, err := p.parse(e)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, evs...)
			}
			if diff := cmp.Diff(c.want, summarize(got)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseFerretDBFullImage: FerretDB's $v:1 $set carries the whole
// post-image; it must become a replacement of the content, not a $set.
func TestParseFerretDBFullImage(t *testing.T) {
	t.Parallel()
	id := bson.D{{Key: "_id", Value: int32(1)}}
	img := bson.D{{Key: "_id", Value: int32(1)}, {Key: "y", Value: int32(5)}}
	e := oplogEntry{Op: "u", NS: "app.c", O: raw(t, bson.D{{Key: "$v", Value: int32(1)}, {Key: "$set", Value: img}}), O2: raw(t, id)}
	evs, err := newEntryParser(nil, true).parse(e)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Op != migration.OpUpdate || evs[0].Update != nil || evs[0].FullDocument.String() != raw(t, img).String() {
		t.Fatalf("events = %+v, want one update carrying the full image", summarize(evs))
	}
}

func TestDiffCatalog(t *testing.T) {
	t.Parallel()
	a, b := migration.Namespace{DB: "app", Coll: "a"}, migration.Namespace{DB: "app", Coll: "b"}
	ix := func(name, field string) bson.Raw {
		return raw(t, bson.D{{Key: "key", Value: bson.D{{Key: field, Value: int32(1)}}}, {Key: "name", Value: name}})
	}
	old := Catalog{a: {Indexes: map[string]bson.Raw{"x_1": ix("x_1", "x"), "y": ix("y", "y")}}}
	cur := Catalog{a: {Indexes: map[string]bson.Raw{"x_1": ix("x_1", "x"), "y": ix("y", "z")}}, b: {Indexes: map[string]bson.Raw{}}}
	got := summarize(diffCatalog(old, cur))
	want := []summary{
		{Op: migration.OpCreate, NS: "app.b"},
		{Op: migration.OpDropIndexes, NS: "app.a", Names: []string{"y"}},
		{Op: migration.OpCreateIndexes, NS: "app.a", Indexes: []string{ix("y", "z").String()}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff (-want +got):\n%s", diff)
	}
	if got := summarize(diffCatalog(cur, Catalog{})); len(got) != 2 || got[0].Op != migration.OpDrop {
		t.Errorf("dropping everything = %+v, want two drops", got)
	}
}

// TestDiffCatalogCollectionSeenOnlyInData: a collection created and dropped
// between two listings, known only from the oplog's writes to it, is
// dropped by the next listing; one that still exists is created (options
// and indexes included).
func TestDiffCatalogCollectionSeenOnlyInData(t *testing.T) {
	t.Parallel()
	tmp, kept := migration.Namespace{DB: "app", Coll: "tmp"}, migration.Namespace{DB: "app", Coll: "kept"}
	old := Catalog{}
	old.noteData(tmp)
	old.noteData(kept)
	old.noteData(kept) // a second write changes nothing
	ix := raw(t, bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: int32(1)}}}, {Key: "name", Value: "k_1"}})
	cur := Catalog{kept: {Indexes: map[string]bson.Raw{"k_1": ix}}}
	want := []summary{
		{Op: migration.OpDrop, NS: "app.tmp"},
		{Op: migration.OpCreate, NS: "app.kept"},
		{Op: migration.OpCreateIndexes, NS: "app.kept", Indexes: []string{ix.String()}},
	}
	if diff := cmp.Diff(want, summarize(diffCatalog(old, cur))); diff != "" {
		t.Errorf("diff (-want +got):\n%s", diff)
	}
}
