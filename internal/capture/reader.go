// Package capture reads the source's change history and turns it into one
// normalized, ordered stream of migration.Event values.
//
// Two readers implement Reader: the oplog reader (local.oplog.rs of a
// replica set, MongoDB's and FerretDB's) and the change-stream reader
// (MongoDB 6.0+, cluster-wide, showExpandedEvents). Detect picks one from
// the source's capabilities. Both pass the conformance suite in
// capture/capturetest. See docs/design/capture.md.
package capture

import (
	"context"
	"errors"
	"fmt"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Reader produces the source's changes as normalized events.
type Reader interface {
	// Run sends to out, in position order, every change in scope whose
	// position is after from, until ctx ends or an error occurs; it closes out
	// when it returns. A zero from starts at the newest position the source
	// holds. Events at exactly from are not repeated, except that the oplog
	// reader may emit catalog (DDL) events already seen before a restart:
	// every event is safe to apply twice. Run returns ctx.Err() when ctx
	// ends, an error wrapping ErrHistoryLost when the source no longer holds
	// the changes after from, and otherwise the first non-transient error
	// (transient ones are retried). Run must not be called concurrently on
	// one Reader.
	Run(ctx context.Context, from migration.Position, out chan<- migration.Event) error

	// Latest returns the newest position the source holds: every change made
	// before the call is at or before it. Lag readings use it. Safe for
	// concurrent use with Run.
	Latest(ctx context.Context) (migration.Position, error)

	// CommitPoint is Latest for the commit: every change made before the
	// call, DDL included, is at or before the position it returns, and a
	// checkpoint reaches that position only once every such change has been
	// sent and applied. Safe for concurrent use with Run.
	CommitPoint(ctx context.Context) (migration.Position, error)

	// Kind names the reader for reports ("oplog" or "change stream").
	Kind() Kind
}

// Kind names a change reader.
type Kind string

// The readers.
const (
	KindOplog        Kind = "oplog"
	KindChangeStream Kind = "change stream"
)

// ErrHistoryLost says the source no longer holds the changes after the
// position capture must resume from.
var ErrHistoryLost = errors.New("the source no longer holds the change history since the last checkpoint " +
	"(its oplog rolled over while the migration was stopped or too far behind); changes made in that gap " +
	"cannot be replayed, so the destination cannot be brought up to date: restart the migration from the " +
	"beginning (drop the destination's copy) and, to avoid this, give the source a larger oplog " +
	"(replSetResizeOplog) or keep the migration running")

// HistoryLostError carries the positions behind an ErrHistoryLost.
type HistoryLostError struct {
	// From is the position capture had to resume from.
	From migration.Position
	// Oldest is the oldest position the source still holds (zero if unknown).
	Oldest migration.Position
}

func (e *HistoryLostError) Error() string {
	return fmt.Sprintf("resume change capture at %s: oldest change the source holds is %s: %v",
		migration.FormatTS(e.From.TS), migration.FormatTS(e.Oldest.TS), ErrHistoryLost)
}

// Unwrap makes errors.Is(err, ErrHistoryLost) true.
func (e *HistoryLostError) Unwrap() error { return ErrHistoryLost }

// Filter reports whether a namespace is in scope. A nil Filter is InScope.
type Filter func(migration.Namespace) bool

// InScope is the default filter: every user collection, skipping system
// namespaces (migration.Namespace.IsSystem) and the engine's metadata database.
func InScope(metaDB string) Filter {
	return func(ns migration.Namespace) bool { return userNamespace(ns, metaDB) }
}

func userNamespace(ns migration.Namespace, metaDB string) bool {
	return ns.DB != "" && !ns.IsSystem() && (metaDB == "" || ns.DB != metaDB)
}

// send delivers ev unless ctx ends first.
func send(ctx context.Context, out chan<- migration.Event, ev migration.Event) error {
	select {
	case out <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
