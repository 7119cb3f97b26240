package verify

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// ignoredIndexFields are listIndexes fields that say nothing about the index.
var ignoredIndexFields = []string{"v", "ns", "background"}

// listIndexSpecs returns name → normalized spec of a collection's indexes;
// a missing collection has none.
func listIndexSpecs(ctx context.Context, c *mongo.Client, ns migration.Namespace) (map[string]string, error) {
	cur, err := c.Database(ns.DB).Collection(ns.Coll).Indexes().List(ctx)
	if mdb.IsNamespaceNotFound(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	out := map[string]string{}
	for cur.Next(ctx) {
		spec := cur.Current
		name, _ := spec.Lookup("name").StringValueOK()
		out[name] = normalizeSpec(spec)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", ns, err)
	}
	return out, nil
}

// normalizeSpec renders an index spec without v, ns and background, with its
// options sorted by name; the order of the key's fields is kept, as it
// defines the index.
func normalizeSpec(spec bson.Raw) string {
	elems, _ := spec.Elements()
	elems = slices.DeleteFunc(elems, func(e bson.RawElement) bool { return slices.Contains(ignoredIndexFields, e.Key()) })
	slices.SortFunc(elems, func(a, b bson.RawElement) int { return strings.Compare(a.Key(), b.Key()) })
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q: ", e.Key())
		if e.Key() == "key" {
			b.WriteString(renderOrdered(e.Value()))
		} else {
			b.WriteString(renderValue(e.Value()))
		}
	}
	b.WriteByte('}')
	return b.String()
}

// renderOrdered renders a document keeping its field order, with numbers
// normalized (1, 1.0 and int64 1 are the same index direction).
func renderOrdered(v bson.RawValue) string {
	doc, ok := v.DocumentOK()
	if !ok {
		return renderValue(v)
	}
	elems, _ := doc.Elements()
	parts := make([]string, len(elems))
	for i, e := range elems {
		parts[i] = strconv.Quote(e.Key()) + ": " + renderValue(e.Value())
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// renderValue renders a value with numbers normalized and embedded
// documents' fields sorted.
func renderValue(v bson.RawValue) string {
	if f, ok := v.AsFloat64OK(); ok && v.Type != bson.TypeBoolean {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if doc, ok := v.DocumentOK(); ok {
		elems, _ := doc.Elements()
		slices.SortFunc(elems, func(a, b bson.RawElement) int { return strings.Compare(a.Key(), b.Key()) })
		parts := make([]string, len(elems))
		for i, e := range elems {
			parts[i] = strconv.Quote(e.Key()) + ": " + renderValue(e.Value())
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return v.String()
}

// compareIndexes lists both sides' indexes of ns and returns the differences by name.
func compareIndexes(ctx context.Context, src, dst *mongo.Client, ns migration.Namespace) ([]IndexDiff, error) {
	s, err := listIndexSpecs(ctx, src, ns)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	d, err := listIndexSpecs(ctx, dst, ns)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	return diffByName(s, d, func(name string, k DiffKind, a, b string) IndexDiff {
		return IndexDiff{Name: name, Kind: k, Source: a, Destination: b}
	}), nil
}

// compareOptions compares two listCollections options documents by option name.
func compareOptions(src, dst bson.Raw) []OptionDiff {
	return diffByName(optionMap(src), optionMap(dst), func(name string, k DiffKind, a, b string) OptionDiff {
		return OptionDiff{Name: name, Kind: k, Source: a, Destination: b}
	})
}

func optionMap(opts bson.Raw) map[string]string {
	m := map[string]string{}
	elems, _ := opts.Elements()
	for _, e := range elems {
		m[e.Key()] = renderValue(e.Value())
	}
	return m
}

// diffByName compares two name → rendering maps, sorted by name.
func diffByName[T any](s, d map[string]string, mk func(name string, k DiffKind, src, dst string) T) []T {
	names := make([]string, 0, len(s)+len(d))
	for n := range s {
		names = append(names, n)
	}
	for n := range d {
		if _, ok := s[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []T
	for _, n := range names {
		a, inS := s[n]
		b, inD := d[n]
		switch {
		case inS && !inD:
			out = append(out, mk(n, DiffMissing, a, ""))
		case !inS && inD:
			out = append(out, mk(n, DiffExtra, "", b))
		case a != b:
			out = append(out, mk(n, DiffDifferent, a, b))
		}
	}
	return out
}
