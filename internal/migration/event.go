package migration

import (
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Op is the kind of a change event.
type Op string

// The operations a change reader emits. Data operations carry a document key;
// DDL operations are barriers for the applier.
const (
	OpInsert        Op = "insert"
	OpUpdate        Op = "update"
	OpReplace       Op = "replace"
	OpDelete        Op = "delete"
	OpCreate        Op = "create"
	OpDrop          Op = "drop"
	OpRename        Op = "rename"
	OpDropDatabase  Op = "dropDatabase"
	OpCreateIndexes Op = "createIndexes"
	OpDropIndexes   Op = "dropIndexes"
	OpModify        Op = "modify"
	OpInvalidate    Op = "invalidate"
	OpNoop          Op = "noop" // position-only: advances the checkpoint, changes nothing
)

// IsDDL reports whether op changes the catalog rather than a document.
func (op Op) IsDDL() bool {
	switch op {
	case OpInsert, OpUpdate, OpReplace, OpDelete, OpNoop:
		return false
	case OpCreate, OpDrop, OpRename, OpDropDatabase, OpCreateIndexes, OpDropIndexes, OpModify, OpInvalidate:
		return true
	}
	return true
}

// Position orders events. TS is the oplog or cluster time; ResumeToken is the
// change-stream token to resume after this event (nil for the oplog reader).
type Position struct {
	TS          bson.Timestamp `bson:"ts" json:"ts"`
	ResumeToken bson.Raw       `bson:"resumeToken,omitempty" json:"resumeToken,omitempty"`
}

// Before reports whether p orders strictly before q (by TS).
func (p Position) Before(q Position) bool { return CompareTS(p.TS, q.TS) < 0 }

// String formats p by its timestamp, as FormatTS does.
func (p Position) String() string { return FormatTS(p.TS) }

// LogValue logs p in the one format positions have in logs and messages.
func (p Position) LogValue() slog.Value { return slog.StringValue(p.String()) }

// IsZero reports whether p is unset.
func (p Position) IsZero() bool { return p.TS.T == 0 && p.TS.I == 0 && len(p.ResumeToken) == 0 }

// CompareTS orders two timestamps: -1, 0 or +1.
func CompareTS(a, b bson.Timestamp) int {
	switch {
	case a.T != b.T:
		if a.T < b.T {
			return -1
		}
		return 1
	case a.I != b.I:
		if a.I < b.I {
			return -1
		}
		return 1
	}
	return 0
}

// UpdateDescription is a normalized partial update: the fields set (dotted
// paths → new values), the fields removed, and arrays truncated.
type UpdateDescription struct {
	UpdatedFields   bson.Raw         `bson:"updatedFields,omitempty"`
	RemovedFields   []string         `bson:"removedFields,omitempty"`
	TruncatedArrays []TruncatedArray `bson:"truncatedArrays,omitempty"`
}

// TruncatedArray says the array at Field was cut to NewSize elements.
type TruncatedArray struct {
	Field   string `bson:"field"`
	NewSize int32  `bson:"newSize"`
}

// Event is one normalized change, the same for every change reader.
type Event struct {
	Op   Op
	NS   Namespace
	Pos  Position
	Wall time.Time

	// DocumentKey is {_id: …} (plus shard key fields) for data operations.
	DocumentKey bson.Raw
	// FullDocument is the whole document for inserts and replaces, and for
	// updates when the reader knows the post-image (FerretDB's oplog).
	FullDocument bson.Raw
	// Update describes a partial update when FullDocument is nil.
	Update *UpdateDescription

	// DDL fields.
	To         Namespace  // rename target
	Indexes    []bson.Raw // createIndexes: index specs (v/ns stripped)
	IndexNames []string   // dropIndexes
	Options    bson.Raw   // create/modify: collection options
}

// MaxTS returns the later of two timestamps.
func MaxTS(a, b bson.Timestamp) bson.Timestamp {
	if CompareTS(a, b) < 0 {
		return b
	}
	return a
}
