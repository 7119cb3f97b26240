// Package agent is the migration host: `livemigrate agent`. It registers
// with a control plane using a link token, reports the source deployments it
// can reach, heartbeats, long-polls for work, and runs validations and
// migrations (the sync engine) for the control plane, posting progress.
//
// The agent keeps no state of its own. A restarted agent registers again with
// the same link token and hostname; the control plane keeps its identity and
// re-sends the work of its unfinished validations and migrations, and the
// engine resumes from its checkpoint on the destination. docs/design/agent.md
// describes the protocol and the resume semantics.
package agent
