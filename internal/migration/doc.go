// Package migration holds the sync engine's domain types: namespaces, the
// normalized change event, positions, phases and progress. It performs no I/O
// and imports nothing else of livemigrate, so every stage can share it.
package migration
