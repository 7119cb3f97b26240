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
