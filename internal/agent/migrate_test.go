package agent

import (
	"testing"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// TestProgressStates: the engine's states (migration.State) and the agent
// protocol's (api.EngineState) are two packages' types that import nothing
// of each other; toAPIProgress maps one to the other by name, so each name
// must stand in both.
func TestProgressStates(t *testing.T) {
	pairs := map[migration.State]api.EngineState{
		"":                        api.StateIdle,
		migration.StateIdle:       api.StateIdle,
		migration.StateRunning:    api.StateRunning,
		migration.StatePaused:     api.StatePaused,
		migration.StateCommitting: api.StateCommitting,
		migration.StateCommitted:  api.StateCommitted,
		migration.StateFailed:     api.StateFailed,
	}
	for s, want := range pairs {
		if got := toAPIProgress(migration.Progress{State: s}).State; got != want {
			t.Errorf("engine state %q is %q on the wire, want %q", s, got, want)
		}
	}
}
