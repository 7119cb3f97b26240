// Package adversary is a seeded adversarial harness for the sync engine:
// a generator of documents of every BSON type FerretDB stores unchanged, a
// workload of CRUD and DDL against the source, kill -9 of the engine
// process at seeded points, and a comparator of source and destination
// that shares no code with internal/verify. The same seed gives the same
// documents, the same operations and the same kill points (timings aside).
// docs/design/testing.md describes it.
package adversary

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// GenOptions sizes generated documents.
type GenOptions struct {
	// MaxDocBytes bounds a large document (default 1 MiB; FerretDB and
	// MongoDB store up to 16 MiB).
	MaxDocBytes int
	// LargeEvery makes one document in LargeEvery large (between
	// MaxDocBytes/4 and MaxDocBytes); 0 means none.
	LargeEvery int
	// MaxDepth bounds nesting (default 90; MongoDB allows 100 levels).
	MaxDepth int
}

func (o GenOptions) withDefaults() GenOptions {
	if o.MaxDocBytes <= 0 {
		o.MaxDocBytes = 1 << 20
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 90
	}
	return o
}

// Generator makes documents and _ids from one seeded source. It is not safe
// for concurrent use: give each goroutine its own.
type Generator struct {
	rng  *rand.Rand
	opts GenOptions
}

// NewGenerator returns a generator for seed and stream (stream separates
// the goroutines of one run).
func NewGenerator(seed, stream uint64, opts GenOptions) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, stream)), opts: opts.withDefaults()}
}

// Rand is the generator's random source (for choices that must follow the seed).
func (g *Generator) Rand() *rand.Rand { return g.rng }

// idKinds are the _id types FerretDB accepts (it refuses regex; arrays are
// refused by MongoDB). bool and null have one or two values per collection,
// so they are made by SpecialIDs, not here.
var idKinds = []string{"objectId", "string", "int32", "int64", "double", "date", "binary", "uuid", "document", "timestamp"}

// ID returns the _id for the unique number n (n < 2^30), its type chosen by
// n. Numeric types use disjoint ranges so that no two numbers collide
// (int32(5) and int64(5) are the same _id to the server).
func ID(n int64) any {
	switch idKinds[n%int64(len(idKinds))] {
	case "objectId":
		var oid bson.ObjectID
		copy(oid[:], fmt.Sprintf("%012x", n))
		return oid
	case "string":
		return fmt.Sprintf("id-%d-ключ-🔑", n)
	case "int32":
		return int32(n)
	case "int64":
		return int64(n) + 1<<40
	case "double":
		return float64(n) + 0.5
	case "date":
		return bson.DateTime(n*1000 - 1<<40) // negative dates too
	case "binary":
		return bson.Binary{Subtype: 0, Data: fmt.Appendf(nil, "b%d", n)}
	case "uuid":
		d := make([]byte, 16)
		copy(d, fmt.Sprintf("%016d", n))
		return bson.Binary{Subtype: 4, Data: d}
	case "document":
		return bson.D{{Key: "n", Value: n}, {Key: "k", Value: "composite"}}
	default:
		return bson.Timestamp{T: uint32(n), I: 7}
	}
}

// SpecialIDs are _ids a collection can hold once each.
func SpecialIDs() []any { return []any{true, false, nil} }

// Document returns a document with _id first: a random mix of fields of
// every type, sometimes empty, sometimes deep, sometimes large.
func (g *Generator) Document(id any) bson.D {
	r := g.rng
	d := bson.D{{Key: "_id", Value: id}}
	switch {
	case r.IntN(20) == 0:
		return d // only the _id
	case g.opts.LargeEvery > 0 && r.IntN(g.opts.LargeEvery) == 0:
		return g.large(d)
	}
	keys := map[string]bool{"_id": true}
	for range r.IntN(12) {
		k := g.key(keys)
		d = append(d, bson.E{Key: k, Value: g.value(0, true)})
	}
	switch r.IntN(10) {
	case 0:
		d = append(d, bson.E{Key: "deep", Value: g.deep(1 + r.IntN(g.opts.MaxDepth-1))})
	case 1:
		d = append(d, bson.E{Key: "medium", Value: g.text(4<<10 + r.IntN(32<<10))})
	}
	d = append(d, bson.E{Key: "cnt", Value: int32(r.IntN(100))})
	return d
}

// large pads d to between MaxDocBytes/4 and MaxDocBytes (less 1 KiB of
// slack for the rest of the document).
func (g *Generator) large(d bson.D) bson.D {
	n := g.opts.MaxDocBytes/4 + g.rng.IntN(g.opts.MaxDocBytes*3/4+1) - 1024
	n = max(n, 1)
	if g.rng.IntN(2) == 0 {
		d = append(d, bson.E{Key: "big", Value: strings.Repeat(string(rune('a'+g.rng.IntN(26))), n)})
	} else {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		d = append(d, bson.E{Key: "bigBin", Value: bson.Binary{Subtype: 0, Data: b}})
	}
	return append(d, bson.E{Key: "cnt", Value: int32(0)})
}

// Grown is a $set that makes a document about n bytes (an update that grows it).
func (g *Generator) Grown(n int) bson.D {
	return bson.D{{Key: "$set", Value: bson.D{{Key: "grown", Value: strings.Repeat("g", max(n-1024, 1))}}}}
}

// key returns a field name not in used: short, long, unicode, with spaces,
// never with '.' or a leading '$' (FerretDB refuses them).
func (g *Generator) key(used map[string]bool) string {
	for {
		var k string
		switch g.rng.IntN(8) {
		case 0:
			k = "поле_" + g.word(3)
		case 1:
			k = "日本語キー" + g.word(2)
		case 2:
			k = "k " + g.word(3) + " ✓"
		case 3:
			k = strings.Repeat("long", 50+g.rng.IntN(200)) + g.word(2)
		case 4:
			k = "emoji🔑" + g.word(2)
		default:
			k = "f_" + g.word(1+g.rng.IntN(6))
		}
		if !used[k] {
			used[k] = true
			return k
		}
	}
}

func (g *Generator) word(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[g.rng.IntN(len(letters))]
	}
	return string(b)
}

// runes are ranges of valid, non-surrogate code points.
var runes = [][2]rune{{0x20, 0x7e}, {0xa0, 0x24f}, {0x400, 0x4ff}, {0x3040, 0x30ff}, {0x4e00, 0x9fff}, {0x1f300, 0x1f64f}, {0x300, 0x36f}}

// text returns valid UTF-8 of about n bytes.
func (g *Generator) text(n int) string {
	var b strings.Builder
	for b.Len() < n {
		rg := runes[g.rng.IntN(len(runes))]
		b.WriteRune(rg[0] + rune(g.rng.IntN(int(rg[1]-rg[0]+1))))
	}
	return b.String()
}

// value returns a random BSON value FerretDB stores unchanged. Arrays are
// never directly inside arrays (arrayOK false).
func (g *Generator) value(depth int, arrayOK bool) any {
	r := g.rng
	kinds := 17
	if depth > 3 {
		kinds = 14 // no more containers
	}
	switch r.IntN(kinds) {
	case 0:
		return g.double()
	case 1:
		return g.text(r.IntN(40))
	case 2:
		return r.Int32() - math.MaxInt32/2
	case 3:
		return r.Int64() - math.MaxInt64/2
	case 4:
		return r.IntN(2) == 0
	case 5:
		return nil
	case 6:
		return bson.DateTime(r.Int64N(1<<42) - 1<<41)
	case 7:
		return bson.DateTime(0)
	case 8:
		var oid bson.ObjectID
		for i := range oid {
			oid[i] = byte(r.Uint32())
		}
		return oid
	case 9:
		sub := []byte{0, 4, 5, 0x80}[r.IntN(4)]
		n := r.IntN(64)
		if sub == 4 || sub == 5 {
			n = 16
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return bson.Binary{Subtype: sub, Data: b}
	case 10:
		return bson.Timestamp{T: r.Uint32(), I: r.Uint32()}
	case 11:
		return bson.Regex{Pattern: "^" + g.word(3) + ".*[0-9]+$", Options: []string{"", "i", "im", "imsx"}[r.IntN(4)]}
	case 12:
		return ""
	case 13:
		return []any{int32(0), int64(0), 0.0, math.MaxFloat64, math.SmallestNonzeroFloat64, int32(math.MinInt32), int64(math.MaxInt64)}[r.IntN(7)]
	case 14, 15:
		d := bson.D{}
		used := map[string]bool{}
		for range r.IntN(5) {
			d = append(d, bson.E{Key: g.key(used), Value: g.value(depth+1, true)})
		}
		return d
	default:
		if !arrayOK {
			return g.double()
		}
		a := bson.A{}
		for range r.IntN(6) {
			a = append(a, g.value(depth+1, false))
		}
		return a
	}
}

// double is finite and never -0 (FerretDB refuses ±Inf, closes the
// connection on NaN and stores -0 as 0).
func (g *Generator) double() float64 {
	f := (g.rng.Float64() - 0.5) * math.Pow(10, float64(g.rng.IntN(40)-20))
	if f == 0 {
		return 0
	}
	return f
}

// deep nests documents (and now and then an array of one document) n
// levels below the field.
func (g *Generator) deep(n int) any {
	var v any = g.text(8)
	for lv := 0; lv < n; lv++ {
		if lv%7 == 3 && lv+1 < n {
			v = bson.A{bson.D{{Key: "a", Value: v}}}
			lv++
			continue
		}
		v = bson.D{{Key: "n", Value: v}}
	}
	return v
}
