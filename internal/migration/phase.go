package migration

// Phase is where a sync run stands.
type Phase string

// Phases of a sync run, in order.
const (
	PhaseIdle       Phase = "idle"
	PhaseStarting   Phase = "starting"        // recording the start point, preparing the destination
	PhaseCopying    Phase = "collection copy" // initial copy of data
	PhaseIndexing   Phase = "index building"  // secondary indexes after a collection's copy
	PhaseApplying   Phase = "change event application"
	PhaseCommitting Phase = "committing"
	PhaseVerifying  Phase = "verifying"
	PhaseCommitted  Phase = "committed"
	PhaseFailed     Phase = "failed"
)
