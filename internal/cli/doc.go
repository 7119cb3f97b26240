// Package cli holds the reusable parts of livemigrate's Admin API commands
// (link, validation, migration, config): the -o output formats and tables,
// a small JSONPath evaluator, profiles (config file + environment), prompts
// for secrets and confirmations, and the polling loop behind --watch.
//
// It knows nothing about cobra: cmd/livemigrate wires flags to these pieces.
package cli
