package web_test

import (
	"encoding/json"
	"testing"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// TestLagShownOnlyWhileChangesApply runs the walk-through's lag rule in the
// browser over the engine's real phase names: "—" before change application
// starts (the copy reports lag 0 then), the live value while changes apply,
// "—" after the end and while the host is lost.
func TestLagShownOnlyWhileChangesApply(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, controlplane.Timing{})
	b := newBrowser(t, cp.url, 1280, 900)
	b.open("/login")
	lag7 := int64(7)
	cases := []struct {
		name  string
		mp    api.MigrationProgress
		value *int64
		hint  string
	}{
		{"new, no progress", api.MigrationProgress{Migration: api.Migration{Status: api.MigrationNew}}, nil, "Starts after the initial copy"},
		{"copying", progress(api.MigrationWorking, migration.PhaseCopying, nil), nil, "Starts after the initial copy"},
		{"indexing", progress(api.MigrationWorking, migration.PhaseIndexing, nil), nil, "Starts after the initial copy"},
		{"applying", progress(api.MigrationWorking, migration.PhaseApplying, &lag7), &lag7, "behind the source"},
		{"complete", progress(api.MigrationComplete, migration.PhaseCommitted, nil), nil, "has ended"},
		{"host lost", func() api.MigrationProgress {
			mp := progress(api.MigrationWorking, migration.PhaseApplying, &lag7)
			mp.Migration.HostLost = &api.HostLoss{Hostname: "h"}
			return mp
		}(), nil, "Unknown while the migration host is lost"},
	}
	for _, c := range cases {
		in, err := json.Marshal(c.mp)
		if err != nil {
			t.Fatal(err)
		}
		b.do("lag of "+c.name, waitJS(`(window.__lag = undefined, import('/js/walkthrough.js').then((m) => { window.__lag = JSON.stringify(m.lagView(`+string(in)+`)); }), true)`),
			waitJS(`window.__lag !== undefined`))
		var got struct {
			Value *int64 `json:"value"`
			Hint  string `json:"hint"`
		}
		if err := json.Unmarshal([]byte(js[string](b, `window.__lag`)), &got); err != nil {
			t.Fatal(err)
		}
		if (got.Value == nil) != (c.value == nil) || got.Value != nil && *got.Value != *c.value || !containsAll(got.Hint, c.hint) {
			t.Errorf("%s: lag %v %q, want %v %q", c.name, got.Value, got.Hint, c.value, c.hint)
		}
	}
}

// progress is an x-progress answer in phase (the engine reports lag 0 while copying).
func progress(status api.MigrationStatus, phase migration.Phase, lag *int64) api.MigrationProgress {
	return api.MigrationProgress{
		Migration: api.Migration{Status: status, LagTimeSeconds: lag},
		Progress:  &api.Progress{Phase: string(phase), LagTimeSeconds: 0},
	}
}
