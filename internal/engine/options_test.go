package engine

import (
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/clone"
	"github.com/livemigrate/livemigrate/internal/mdb"
)

// New refuses options it would otherwise ignore or fail on mid-run, naming
// each one.
func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	good := Options{Source: mdb.URI("mongodb://127.0.0.1:1"), Destination: mdb.URI("mongodb://127.0.0.1:2")}
	if _, err := New(good, testLogger(t)); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"scan method", func(o *Options) { o.Copy = clone.Options{Scan: "mapReduce"} }, `copy: scan method "mapReduce": want "find" or "aggregate"`},
		{"verification", func(o *Options) { o.Verification = "sometimes" }, "sometimes"},
		{"no source", func(o *Options) { o.Source = "" }, "source"},
	} {
		o := good
		tc.edit(&o)
		if _, err := New(o, testLogger(t)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
