// Package mdb is the driver glue every stage shares: connection strings that
// redact themselves, connecting with clear errors, what a server is and what
// it can do (Probe, in topo.go: version, topology, change history), the proof
// that two connection strings reach different deployments (identity.go),
// MongoDB error predicates and the one retry policy. MongoDB error codes and
// labels are read only here.
package mdb
