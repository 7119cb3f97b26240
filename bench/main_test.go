package main

import (
	"slices"
	"testing"
)

func TestPositiveList(t *testing.T) {
	ints, err := positiveList[int]("-docs", "25000, 50000,1")
	if err != nil || !slices.Equal(ints, []int{25000, 50000, 1}) {
		t.Errorf("positiveList[int](25000, 50000,1) = %v, %v", ints, err)
	}
	floats, err := positiveList[float64]("-rates", "100,2.5")
	if err != nil || !slices.Equal(floats, []float64{100, 2.5}) {
		t.Errorf("positiveList[float64](100,2.5) = %v, %v", floats, err)
	}
	for _, bad := range []string{"", "0", "-3", "12abc", "1.5", "10,", "10,,20", "ten"} {
		if got, err := positiveList[int]("-docs", bad); err == nil {
			t.Errorf("positiveList[int](%q) = %v, want an error", bad, got)
		}
	}
	if _, err := positiveList[float64]("-rates", "0.0"); err == nil {
		t.Errorf("positiveList[float64](0.0): want an error")
	}
}

func TestParseMethod(t *testing.T) {
	for m, want := range map[string]engineVariant{
		"raw-agg-ixfirst":      {},
		"engine":               {},
		"engine-w2-i3-b500-db": {workers: 2, inserters: 3, batch: 500, namedDB: true},
		"engine-ixafter":       {indexesFirstUpTo: -1},
		"engine-ixup5000-db":   {indexesFirstUpTo: 5000, namedDB: true},
		"engine-first64":       {firstBatch: 64},
	} {
		if got, err := parseMethod(m); err != nil || got != want {
			t.Errorf("parseMethod(%q) = %+v, %v; want %+v", m, got, err, want)
		}
	}
	for _, bad := range []string{"mongodump", "engine-ixup0", "engine-ixup", "engine-ixupx", "engine-w0", "engine-z1", "raw-fast"} {
		if got, err := parseMethod(bad); err == nil {
			t.Errorf("parseMethod(%q) = %+v, want an error", bad, got)
		}
	}
}
