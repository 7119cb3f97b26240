package mdb

import (
	"math/rand/v2"
	"testing"
)

// simulate reads docs (sizes in bytes) batch by batch as a server that does
// not cap replies would, and returns the largest reply and the batch count
// of the attempt that read everything. A reply over the driver's limit
// fails the attempt: the sizer is told and the read starts again, as the
// copy does.
func simulate(t *testing.T, s *BatchSizer, docs []int64) (largest int64, batches, restarts int) {
	t.Helper()
	for i := 0; i < len(docs); {
		n := min(s.Size(), len(docs)-i)
		var bytes, big int64
		for _, d := range docs[i : i+n] {
			bytes += d
			big = max(big, d)
		}
		if bytes > driverMaxMessage {
			t.Logf("overflow at %d, size %d, %d bytes", i, n, bytes)
			if !s.TooLarge() {
				t.Fatalf("a reply of one document over the driver's limit")
			}
			restarts++
			s.Restart()
			i, largest, batches = 0, 0, 0
			continue
		}
		largest = max(largest, bytes)
		batches++
		s.Observe(n, bytes, big)
		i += n
	}
	return largest, batches, restarts
}

func TestBatchSizerBoundsReplies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	uniform := func(n int, lo, hi int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = lo + r.Int64N(hi-lo+1)
		}
		return out
	}
	mixed := append(uniform(5000, 50, 2000), uniform(200, 1<<20, MaxBSONSize)...)
	mixed = append(mixed, uniform(5000, 0, 100)...)
	for _, tc := range []struct {
		name string
		docs []int64
		// most batches a 1000-document cap allows, for small documents
		maxBatches int
		// attempts that overflow the driver's limit (sudden size jumps)
		restarts int
	}{
		{"150 of 100-900 KB", uniform(150, 100<<10, 900<<10), 22, 0},
		{"empty documents", uniform(10000, 5, 5), 15, 0},
		{"1 KB documents", uniform(50000, 900, 1100), 55, 0},
		{"near 16 MiB", uniform(20, MaxBSONSize-1024, MaxBSONSize), 20, 0},
		{"small then large then tiny", mixed, 400, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewBatchSizer(SizerOptions{})
			largest, batches, restarts := simulate(t, s, tc.docs)
			// One reply holds whole documents: a single one may be 16 MiB.
			var biggest int64
			for _, d := range tc.docs {
				biggest = max(biggest, d)
			}
			bound := max(int64(2*DefaultBatchBytes), biggest)
			if restarts == 0 && largest > bound {
				t.Errorf("largest reply %d bytes, want ≤ %d", largest, bound)
			}
			if batches > tc.maxBatches {
				t.Errorf("%d batches, want ≤ %d (batches too small)", batches, tc.maxBatches)
			}
			if restarts > tc.restarts {
				t.Errorf("%d attempts overflowed the driver's limit, want ≤ %d", restarts, tc.restarts)
			}
			t.Logf("%d docs: %d batches, %d restarts, largest reply %.1f MiB", len(tc.docs), batches, restarts, float64(largest)/(1<<20))
		})
	}
}

func TestBatchSizerFirstBatch(t *testing.T) {
	if n := NewBatchSizer(SizerOptions{}).Size(); n != DefaultFirstBatch {
		t.Errorf("first batch %d, want %d", n, DefaultFirstBatch)
	}
	if n := NewBatchSizer(SizerOptions{MaxDocs: 3, FirstDocs: 8}).Size(); n != 3 {
		t.Errorf("first batch with MaxDocs 3: %d", n)
	}
}

func TestBatchSizerTooLarge(t *testing.T) {
	s := NewBatchSizer(SizerOptions{})
	for range 5 {
		s.Observe(s.Size(), int64(s.Size())*100, 100)
	}
	if s.Size() != 1000 {
		t.Fatalf("size after small documents %d, want 1000", s.Size())
	}
	at := int64(s.read)
	var sizes []int
	for s.TooLarge() {
		sizes = append(sizes, s.Size())
	}
	if want := []int{125, 15, 1}; !equal(sizes, want) {
		t.Errorf("sizes after each too-large reply %v, want %v", sizes, want)
	}
	// The next attempt reads at full size up to the place that overflowed,
	// one document at a time there, and grows again after it.
	s.Restart()
	for s.read < at {
		n := min(int64(s.Size()), at-s.read+1)
		s.Observe(int(n), n*100, 100)
	}
	if s.Size() != 1 {
		t.Errorf("size at the place that overflowed: %d, want 1", s.Size())
	}
	for s.read < at+1000 {
		s.Observe(s.Size(), int64(s.Size())*100, 100)
	}
	if s.Size() < 256 {
		t.Errorf("size after the place that overflowed: %d, want it grown again", s.Size())
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
