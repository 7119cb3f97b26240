// Package controlplane is livemigrate's control plane: the Atlas-shaped Admin
// API, the agent endpoint, the SQLite store, timers (cutover window, agent
// heartbeat loss), webhooks, the event log and /metrics. The wire types are in
// internal/api; the design is in docs/design/controlplane.md.
//
// New opens the store; Bootstrap creates the first owner; Serve runs HTTP and
// the timers until its context ends, then shuts down gracefully.
package controlplane
