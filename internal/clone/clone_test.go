package clone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// everyType is a document holding every BSON type, including those FerretDB
// cannot store (decimal128, min/maxKey, undefined, dbPointer, JavaScript,
// symbol, code with scope, NaN, ±Inf, -0.0, duplicate keys).
func everyType(t *testing.T) bson.Raw {
	t.Helper()
	dec, err := bson.ParseDecimal128("1234.5678")
	if err != nil {
		t.Fatal(err)
	}
	idx, doc := bsoncore.AppendDocumentStart(nil)
	doc = bsoncore.AppendObjectIDElement(doc, "_id", bson.NewObjectID())
	doc = bsoncore.AppendDoubleElement(doc, "double", 1.25)
	doc = bsoncore.AppendDoubleElement(doc, "negzero", bytesNegZero())
	doc = bsoncore.AppendStringElement(doc, "string", "héllo")
	doc = bsoncore.AppendDocumentElement(doc, "doc", bsoncore.NewDocumentBuilder().AppendInt32("a", 1).Build())
	doc = bsoncore.AppendArrayElement(doc, "nested", bsoncore.NewArrayBuilder().AppendArray(bsoncore.NewArrayBuilder().AppendInt32(1).Build()).Build())
	doc = bsoncore.AppendBinaryElement(doc, "binary", 4, []byte("0123456789abcdef"))
	doc = bsoncore.AppendUndefinedElement(doc, "undefined")
	doc = bsoncore.AppendBooleanElement(doc, "bool", true)
	doc = bsoncore.AppendDateTimeElement(doc, "date", -1)
	doc = bsoncore.AppendNullElement(doc, "null")
	doc = bsoncore.AppendRegexElement(doc, "regex", "^a.*", "imsx")
	doc = bsoncore.AppendDBPointerElement(doc, "dbpointer", "db.coll", bson.NewObjectID())
	doc = bsoncore.AppendJavaScriptElement(doc, "js", "function(){}")
	doc = bsoncore.AppendSymbolElement(doc, "symbol", "sym")
	doc = bsoncore.AppendCodeWithScopeElement(doc, "cws", "x", bsoncore.NewDocumentBuilder().AppendInt32("x", 1).Build())
	doc = bsoncore.AppendInt32Element(doc, "int32", -7)
	doc = bsoncore.AppendTimestampElement(doc, "ts", 1, 2)
	doc = bsoncore.AppendInt64Element(doc, "int64", 1<<62)
	hi, lo := dec.GetBytes()
	doc = bsoncore.AppendDecimal128Element(doc, "decimal", hi, lo)
	doc = bsoncore.AppendMinKeyElement(doc, "minkey")
	doc = bsoncore.AppendMaxKeyElement(doc, "maxkey")
	doc = bsoncore.AppendStringElement(doc, "dup", "first")
	doc = bsoncore.AppendStringElement(doc, "dup", "second")
	doc = bsoncore.AppendStringElement(doc, "a.b", "dotted")
	doc = bsoncore.AppendStringElement(doc, "$dollar", "x")
	doc = bsoncore.AppendStringElement(doc, "badutf8", "\xff\xfe")
	doc, err = bsoncore.AppendDocumentEnd(doc, idx)
	if err != nil {
		t.Fatal(err)
	}
	return bson.Raw(doc)
}

func bytesNegZero() float64 {
	z := 0.0
	return -z
}

// TestEveryBSONTypeUnchanged runs documents through the copy path's own
// steps — taking a document from a cursor buffer into a batch, and encoding
// the batch the way InsertMany does — and checks the bytes are unchanged.
func TestEveryBSONTypeUnchanged(t *testing.T) {
	orig := everyType(t)
	if err := orig.Validate(); err != nil {
		t.Fatalf("test document invalid: %v", err)
	}
	// The cursor reuses its buffer: the batch must hold a copy.
	buf := slices.Clone(orig)
	var b batch
	b.add(buf, 10)
	clear(buf)
	if !bytes.Equal(b.docs[0], orig) || b.bytes != int64(len(orig)) {
		t.Fatalf("batch holds %x, want %x", b.docs[0], orig)
	}
	// The driver marshals each element of the InsertMany slice with the
	// default registry; bson.Raw must come out as the same bytes.
	for _, d := range b.docs {
		got, err := bson.Marshal(d)
		if err != nil {
			t.Fatalf("marshal raw document: %v", err)
		}
		if diff := cmp.Diff([]byte(orig), got); diff != "" {
			t.Errorf("raw document changed by encoding (-want +got):\n%s", diff)
		}
	}
}

func TestCopyBoundedBytesInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	var tasks []Task
	want := map[migration.Namespace]int64{}
	for c := range 3 {
		ns := migration.Namespace{DB: "d", Coll: fmt.Sprintf("c%d", c)}
		var docs []any
		for i := range 2000 + c*500 {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: string(bytes.Repeat([]byte{'x'}, 500))}})
		}
		if _, err := src.Database(ns.DB).Collection(ns.Coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, Task{NS: ns, EstimatedBytes: int64(c)})
		want[ns] = int64(len(docs))
	}
	const limit = 256 << 10
	cp := New(src, dst, Options{Workers: 2, MaxBytesInFlight: limit, BatchDocuments: 1000}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var mu sync.Mutex
	got := map[migration.Namespace]int64{}
	var order []migration.Namespace
	err := cp.CopyAll(ctx, tasks, Hooks{
		Begin: func(ctx context.Context, t Task) error {
			mu.Lock()
			order = append(order, t.NS)
			mu.Unlock()
			return dst.Database(t.NS.DB).Collection(t.NS.Coll).Drop(ctx)
		},
		Done: func(_ context.Context, t Task, r Result) error {
			mu.Lock()
			defer mu.Unlock()
			got[t.NS] = r.Documents
			return nil
		},
	})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("documents copied (-want +got):\n%s", diff)
	}
	if p := cp.PeakBytesInFlight(); p > limit || p == 0 {
		t.Errorf("peak bytes in flight %d, cap %d", p, limit)
	}
	for ns, n := range want {
		if c, _ := dst.Database(ns.DB).Collection(ns.Coll).CountDocuments(ctx, bson.D{}); c != n {
			t.Errorf("%s: %d documents on the destination, want %d", ns, c, n)
		}
	}
	if order[len(order)-1].Coll != "c0" { // two workers: c2 and c1 first, the smallest last
		t.Errorf("largest task not first: %v", order)
	}
}
