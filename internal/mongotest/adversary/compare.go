package adversary

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The comparator is independent of internal/verify on purpose: it reads
// every document of both sides whole, keys it by the raw bytes of its _id
// (type byte + value), sorts, and compares documents byte for byte, after
// moving _id first (the one reordering FerretDB does). It also compares
// the set of collections, their options and their indexes.

// Difference is one way the destination is not the source.
type Difference struct {
	Namespace string
	// Kind is "collection", "options", "index", "missing", "extra" or "differing".
	Kind string
	// Detail says what: the _id (extended JSON), index name, or both sides.
	Detail string
}

func (d Difference) String() string { return d.Namespace + " " + d.Kind + ": " + d.Detail }

// CompareStats counts what the comparator read.
type CompareStats struct {
	Collections int
	Documents   int64
	Bytes       int64
}

// CompareOptions tunes the comparator.
type CompareOptions struct {
	// SkipDatabases are left out besides admin, config and local (e.g. the
	// engine's metadata database, "__livemigrate").
	SkipDatabases []string
	// MaxDocBytes is the largest document expected; reads are batched so one
	// reply stays far below the driver's 48 MB message limit.
	MaxDocBytes int
}

// Compare lists every difference between src and dst.
func Compare(ctx context.Context, src, dst *mongo.Client, o CompareOptions) ([]Difference, CompareStats, error) {
	skip := map[string]bool{"admin": true, "config": true, "local": true}
	for _, db := range o.SkipDatabases {
		skip[db] = true
	}
	batch := int32(1000)
	if o.MaxDocBytes > 0 {
		batch = int32(min(1000, max(1, (24<<20)/o.MaxDocBytes)))
	}
	var diffs []Difference
	var st CompareStats
	sColls, err := collections(ctx, src, skip)
	if err != nil {
		return nil, st, fmt.Errorf("list source collections: %w", err)
	}
	dColls, err := collections(ctx, dst, skip)
	if err != nil {
		return nil, st, fmt.Errorf("list destination collections: %w", err)
	}
	for _, ns := range union(sColls, dColls) {
		s, inS := sColls[ns]
		d, inD := dColls[ns]
		if !inS || !inD {
			side := "source"
			if inD {
				side = "destination"
			}
			diffs = append(diffs, Difference{ns, "collection", "exists on the " + side + " only"})
			continue
		}
		st.Collections++
		if !bytes.Equal(s, d) {
			diffs = append(diffs, Difference{ns, "options", fmt.Sprintf("source %v, destination %v", s, d)})
		}
		idx, err := compareIndexes(ctx, src, dst, ns)
		if err != nil {
			return nil, st, err
		}
		diffs = append(diffs, idx...)
		dd, n, b, err := compareDocuments(ctx, src, dst, ns, batch)
		if err != nil {
			return nil, st, err
		}
		diffs = append(diffs, dd...)
		st.Documents += n
		st.Bytes += b
	}
	return diffs, st, nil
}

// collections maps "db.coll" to the raw bytes of its options.
func collections(ctx context.Context, c *mongo.Client, skip map[string]bool) (map[string]bson.Raw, error) {
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	out := map[string]bson.Raw{}
	for _, db := range dbs {
		if skip[db] {
			continue
		}
		cur, err := c.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", db, err)
		}
		var specs []struct {
			Name    string   `bson:"name"`
			Type    string   `bson:"type"`
			Options bson.Raw `bson:"options"`
		}
		if err := cur.All(ctx, &specs); err != nil {
			return nil, fmt.Errorf("%s: %w", db, err)
		}
		for _, s := range specs {
			if strings.HasPrefix(s.Name, "system.") {
				continue
			}
			out[db+"."+s.Name] = s.Options
		}
	}
	return out, nil
}

func union(a, b map[string]bson.Raw) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func coll(c *mongo.Client, ns string) *mongo.Collection {
	db, name, _ := strings.Cut(ns, ".")
	return c.Database(db).Collection(name)
}

// indexes maps index name to "key unique" (FerretDB does not report sparse back).
func indexes(ctx context.Context, c *mongo.Client, ns string) (map[string]string, error) {
	cur, err := coll(c, ns).Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", ns, err)
	}
	var specs []struct {
		Name   string   `bson:"name"`
		Key    bson.Raw `bson:"key"`
		Unique bool     `bson:"unique"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", ns, err)
	}
	out := map[string]string{}
	for _, s := range specs {
		out[s.Name] = fmt.Sprintf("%s unique=%v", s.Key, s.Unique)
	}
	return out, nil
}

func compareIndexes(ctx context.Context, src, dst *mongo.Client, ns string) ([]Difference, error) {
	s, err := indexes(ctx, src, ns)
	if err != nil {
		return nil, err
	}
	d, err := indexes(ctx, dst, ns)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range s {
		names = append(names, n)
	}
	for n := range d {
		if _, ok := s[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []Difference
	for _, n := range names {
		if s[n] != d[n] {
			out = append(out, Difference{ns, "index", fmt.Sprintf("%s: source %q, destination %q", n, s[n], d[n])})
		}
	}
	return out, nil
}

// keyed is one document under the canonical encoding of its _id.
type keyed struct {
	key string // _id type byte + value bytes
	doc bson.Raw
}

// readAll reads ns whole, keyed and sorted by the canonical _id encoding,
// each document with _id moved first.
func readAll(ctx context.Context, c *mongo.Client, ns string, batch int32) ([]keyed, int64, error) {
	cur, err := coll(c, ns).Find(ctx, bson.D{}, options.Find().SetBatchSize(batch))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	var out []keyed
	var size int64
	for cur.Next(ctx) {
		doc, key, err := idFirst(cur.Current)
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", ns, err)
		}
		out = append(out, keyed{key, doc})
		size += int64(len(doc))
	}
	if err := cur.Err(); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", ns, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, size, nil
}

// idFirst returns a copy of doc with its _id element first, and the _id's
// canonical key.
func idFirst(doc bson.Raw) (bson.Raw, string, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, "", err
	}
	at := -1
	for i, e := range elems {
		if e.Key() == "_id" {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, "", fmt.Errorf("document without _id: %s", doc)
	}
	v := elems[at].Value()
	key := string(append([]byte{byte(v.Type)}, v.Value...))
	if at == 0 {
		return slices.Clone(doc), key, nil
	}
	body := slices.Clone([]byte(elems[at]))
	for i, e := range elems {
		if i != at {
			body = append(body, e...)
		}
	}
	out := make([]byte, 4, len(body)+5)
	n := len(body) + 5
	out[0], out[1], out[2], out[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	out = append(append(out, body...), 0)
	return out, key, nil
}

func compareDocuments(ctx context.Context, src, dst *mongo.Client, ns string, batch int32) ([]Difference, int64, int64, error) {
	s, sb, err := readAll(ctx, src, ns, batch)
	if err != nil {
		return nil, 0, 0, err
	}
	d, _, err := readAll(ctx, dst, ns, batch)
	if err != nil {
		return nil, 0, 0, err
	}
	var out []Difference
	add := func(kind string, doc bson.Raw, detail string) {
		out = append(out, Difference{ns, kind, "_id " + doc.Lookup("_id").String() + detail})
	}
	i, j := 0, 0
	for i < len(s) || j < len(d) {
		switch {
		case j == len(d) || (i < len(s) && s[i].key < d[j].key):
			add("missing", s[i].doc, "")
			i++
		case i == len(s) || d[j].key < s[i].key:
			add("extra", d[j].doc, "")
			j++
		default:
			if !bytes.Equal(s[i].doc, d[j].doc) {
				add("differing", s[i].doc, firstDifference(s[i].doc, d[j].doc))
			}
			i++
			j++
		}
	}
	return out, int64(len(s)), sb, nil
}

// firstDifference names the first top-level field that differs.
func firstDifference(a, b bson.Raw) string {
	ae, _ := a.Elements()
	be, _ := b.Elements()
	for k := range max(len(ae), len(be)) {
		switch {
		case k >= len(ae):
			return fmt.Sprintf(": destination has extra field %q", be[k].Key())
		case k >= len(be):
			return fmt.Sprintf(": destination lacks field %q", ae[k].Key())
		case !bytes.Equal(ae[k], be[k]):
			return fmt.Sprintf(": field %q (source %d bytes, destination %d bytes)", ae[k].Key(), len(ae[k]), len(be[k]))
		}
	}
	return ""
}
