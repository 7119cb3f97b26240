// Package checkpoint is the sync engine's durable state, kept on the
// destination in one reserved database (default "__livemigrate"), as mongosync
// does: the run's identity and start point, each namespace's copy state, the
// unique indexes relaxed during sync, and a generic key/value place for the
// change-application checkpoint. docs/design/resume.md describes the format.
package checkpoint
