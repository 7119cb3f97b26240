package migration

import "time"

// State is the externally visible state of a sync run, as mongosync names it.
type State string

// States of a sync run.
const (
	StateIdle       State = "IDLE"
	StateRunning    State = "RUNNING"
	StatePaused     State = "PAUSED"
	StateCommitting State = "COMMITTING"
	StateCommitted  State = "COMMITTED"
	StateFailed     State = "FAILED"
)

// Progress is a copy-out snapshot of a sync run, shaped after mongosync's
// GET /api/v1/progress.
type Progress struct {
	State     State  `json:"state"`
	Phase     Phase  `json:"info"`
	CanCommit bool   `json:"canCommit"`
	CanWrite  bool   `json:"canWrite"`
	Error     string `json:"error,omitempty"`

	// StartPoint is where change capture starts (recorded before the copy).
	StartPoint Position `json:"startPoint"`

	LagTimeSeconds     int64 `json:"lagTimeSeconds"`
	TotalEventsApplied int64 `json:"totalEventsApplied"`

	CollectionCopy CopyProgress  `json:"collectionCopy"`
	IndexBuilding  IndexProgress `json:"indexBuilding"`

	// Namespaces is per-namespace copy progress, in the order they were planned.
	Namespaces []NamespaceProgress `json:"namespaces,omitempty"`
	// Background is the continuous verifier's coverage while changes
	// apply; nil before change application and in the verification modes
	// full and after.
	Background *BackgroundVerification `json:"backgroundVerification,omitempty"`
	Warnings   []string                `json:"warnings,omitempty"`

	StartedAt time.Time `json:"startedAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// BackgroundVerification is the continuous verifier's work so far.
type BackgroundVerification struct {
	// NamespacesVerified counts namespaces whose pass finished and still
	// holds (not voided by a rename, a drop, a source restart or too many
	// changes), of Namespaces the verifier knows.
	NamespacesVerified int `json:"namespacesVerified"`
	Namespaces         int `json:"namespaces"`
	// DocumentsCompared counts source documents compared by its passes;
	// Passes the namespace passes finished, PassesInvalidated those voided.
	DocumentsCompared int64 `json:"documentsCompared"`
	Passes            int   `json:"passes"`
	PassesInvalidated int   `json:"passesInvalidated"`
	// DocumentsRechecked counts changed documents it compared again;
	// DocumentsToRecheck those changed since their comparison (what the
	// commit compares, for the namespaces verified).
	DocumentsRechecked int64 `json:"documentsRechecked"`
	DocumentsToRecheck int64 `json:"documentsToRecheck"`
	// Pauses counts the times it stopped for lag, PausedSeconds how long;
	// SlowedSeconds is the time it slept to go slower while the lag was raised.
	Pauses        int     `json:"pauses"`
	PausedSeconds float64 `json:"pausedSeconds"`
	SlowedSeconds float64 `json:"slowedSeconds"`
	LastError     string  `json:"lastError,omitempty"`
}

// CopyProgress is the initial copy against its up-front estimate.
type CopyProgress struct {
	EstimatedTotalBytes     int64 `json:"estimatedTotalBytes"`
	EstimatedCopiedBytes    int64 `json:"estimatedCopiedBytes"`
	EstimatedTotalDocuments int64 `json:"estimatedTotalDocuments"`
	CopiedDocuments         int64 `json:"copiedDocuments"`
	CollectionsTotal        int   `json:"collectionsTotal"`
	CollectionsCopied       int   `json:"collectionsCopied"`
	// ETASeconds is the remaining copy time at the current rate (-1 unknown).
	ETASeconds int64 `json:"etaSeconds"`
	// BytesPerSecond is the copy rate since the copy started (this process).
	BytesPerSecond float64 `json:"bytesPerSecond"`
}

// IndexProgress counts secondary indexes built on the destination.
type IndexProgress struct {
	Total   int `json:"total"`
	Built   int `json:"built"`
	Refused int `json:"refused"`
}

// CopyState is where one namespace's copy stands.
type CopyState string

// Copy states of a namespace.
const (
	CopyPending CopyState = "pending"
	CopyRunning CopyState = "copying"
	CopyDone    CopyState = "copied"  // data copied, indexes not yet built
	CopyIndexed CopyState = "indexed" // data and indexes on the destination
	CopySkipped CopyState = "skipped" // refused by the destination, skipped by policy
)

// NamespaceProgress is one namespace's copy progress.
type NamespaceProgress struct {
	NS                 Namespace `json:"ns"`
	State              CopyState `json:"state"`
	EstimatedBytes     int64     `json:"estimatedBytes"`
	CopiedBytes        int64     `json:"copiedBytes"`
	EstimatedDocuments int64     `json:"estimatedDocuments"`
	CopiedDocuments    int64     `json:"copiedDocuments"`
}
