// Package mongotest starts real MongoDB-wire servers (FerretDB v1.24.2) for
// tests, benchmarks and the demo: a source that behaves as a one-member
// replica set with an oplog, and destinations; as separate OS processes that
// can be killed with SIGKILL and restarted on the same data, with SCRAM
// authentication, TLS, and the SQLite or PostgreSQL backend. It also offers a
// TCP fault proxy and a workload generator.
//
// The functions that take a testing.TB register cleanups and fail the test on
// error; Start and the other context-taking functions are for programs (the
// demo and the benchmarks) and return errors instead.
package mongotest
