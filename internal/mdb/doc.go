// Package mdb is the driver glue every stage shares: connection strings that
// redact themselves, connecting with clear errors, topology and capability
// detection, MongoDB error predicates and the one retry policy. MongoDB error
// codes and labels are read only here.
package mdb
