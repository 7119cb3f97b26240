package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Collections of the metadata database.
const (
	collRun     = "run"
	collCopy    = "copy"
	collIndexes = "indexes"
	collState   = "state"
	runID       = "run"
)

// Identity is what a run is bound to. A restart must present the same.
type Identity struct {
	// Source and Destination fingerprint the deployments (replica-set name and
	// members, or an explicit ID), not the connection strings, so a new
	// password or a proxy address does not change them.
	Source      string `bson:"source" json:"source"`
	Destination string `bson:"destination" json:"destination"`
	// Filters is the scope's fingerprint (include/exclude filters).
	Filters string `bson:"filters" json:"filters"`
	// Migration is the migration's ID when a control plane runs it ("" for
	// the command line), so a new migration between the same deployments is
	// not taken for the resumption of a finished one.
	Migration string `bson:"migration,omitempty" json:"migration,omitempty"`
}

// Run is the run document.
type Run struct {
	Identity    `bson:",inline"`
	StartPoint  migration.Position `bson:"startPoint"`
	StartMethod string             `bson:"startMethod,omitempty"`
	CreatedAt   time.Time          `bson:"createdAt"`
	// CopyDone is set when every namespace is copied and indexed.
	CopyDone bool `bson:"copyDone"`
}

// HasStartPoint reports whether the start point was recorded.
func (r *Run) HasStartPoint() bool { return !r.StartPoint.IsZero() }

// ErrRunMismatch is wrapped by the error Begin returns when the destination
// holds the state of a run with another identity.
var ErrRunMismatch = errors.New("the destination's metadata belongs to another migration")

// MismatchError says how the stored run differs from the requested one.
type MismatchError struct {
	DB             string
	Stored, Wanted Identity
}

func (e *MismatchError) Error() string {
	what := ""
	switch {
	case e.Stored.Source != e.Wanted.Source:
		what = fmt.Sprintf("it migrates from source %q, this run from %q", e.Stored.Source, e.Wanted.Source)
	case e.Stored.Destination != e.Wanted.Destination:
		what = fmt.Sprintf("it was written for destination %q, this is %q", e.Stored.Destination, e.Wanted.Destination)
	case e.Stored.Migration != e.Wanted.Migration:
		what = fmt.Sprintf("it belongs to migration %q, this is %q", e.Stored.Migration, e.Wanted.Migration)
	default:
		what = fmt.Sprintf("it used namespace filters %q, this run %q", e.Stored.Filters, e.Wanted.Filters)
	}
	return fmt.Sprintf("%v (database %s: %s); start again with the same source, destination and filters to resume it, or start with dropDestinationData (or drop database %s on the destination) to start over", ErrRunMismatch, e.DB, what, e.DB)
}

func (e *MismatchError) Unwrap() error { return ErrRunMismatch }

// Store reads and writes the metadata database. It is safe for concurrent use.
type Store struct {
	db     *mongo.Database
	logger *slog.Logger
	retry  mdb.RetryPolicy
}

// Open returns the store in database name of dst. It creates nothing until
// the first write.
func Open(dst *mongo.Client, name string, logger *slog.Logger) *Store {
	wc := options.Database().SetWriteConcern(writeconcern.Majority())
	return &Store{db: dst.Database(name, wc), logger: logger.With("component", "checkpoint"), retry: mdb.DefaultRetry}
}

// Name is the metadata database's name.
func (s *Store) Name() string { return s.db.Name() }

// RunCollection is the collection of the metadata database (Name) that
// holds the run's document once Begin returns.
func (s *Store) RunCollection() string { return collRun }

func (s *Store) do(ctx context.Context, what string, op func(context.Context) error) error {
	if err := mdb.Retry(ctx, s.logger, what, s.retry, op); err != nil {
		return fmt.Errorf("%s in %s: %w", what, s.db.Name(), err)
	}
	return nil
}

// Load returns the stored run, if there is one.
func (s *Store) Load(ctx context.Context) (*Run, bool, error) {
	var run Run
	found := true
	err := s.do(ctx, "read run", func(ctx context.Context) error {
		found = true
		err := s.db.Collection(collRun).FindOne(ctx, bson.D{{Key: "_id", Value: runID}}).Decode(&run)
		if errors.Is(err, mongo.ErrNoDocuments) {
			found = false
			return nil
		}
		return err
	})
	if err != nil || !found {
		return nil, false, err
	}
	return &run, true, nil
}

// Begin loads the stored run, or records a new one with id. It returns the
// run and whether it was resumed. A stored run with another identity is
// refused with a *MismatchError (errors.Is ErrRunMismatch).
func (s *Store) Begin(ctx context.Context, id Identity) (*Run, bool, error) {
	stored, found, err := s.Load(ctx)
	if err != nil {
		return nil, false, err
	}
	if found {
		if stored.Identity != id {
			return nil, false, &MismatchError{DB: s.db.Name(), Stored: stored.Identity, Wanted: id}
		}
		return stored, true, nil
	}
	run := Run{Identity: id, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	err = s.do(ctx, "record run", func(ctx context.Context) error {
		_, err := s.db.Collection(collRun).InsertOne(ctx, withID(runID, run))
		if mdb.IsDuplicateKey(err) {
			return nil // an earlier attempt of this very insert succeeded
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return &run, false, nil
}

// SetStartPoint records where change capture starts. It is written before
// the copy reads any document.
func (s *Store) SetStartPoint(ctx context.Context, pos migration.Position, method string) error {
	return s.setRun(ctx, "record start point", bson.D{{Key: "startPoint", Value: pos}, {Key: "startMethod", Value: method}})
}

// SetCopyDone records that every namespace is copied and indexed.
func (s *Store) SetCopyDone(ctx context.Context) error {
	return s.setRun(ctx, "record copy done", bson.D{{Key: "copyDone", Value: true}})
}

func (s *Store) setRun(ctx context.Context, what string, set bson.D) error {
	return s.do(ctx, what, func(ctx context.Context) error {
		_, err := s.db.Collection(collRun).UpdateOne(ctx, bson.D{{Key: "_id", Value: runID}}, bson.D{{Key: "$set", Value: set}})
		return err
	})
}

// withID marshals v with _id first (FerretDB moves _id first anyway).
func withID(id string, v any) bson.D {
	raw, err := bson.Marshal(v)
	if err != nil {
		return bson.D{{Key: "_id", Value: id}}
	}
	d := bson.D{{Key: "_id", Value: id}}
	elems, _ := bson.Raw(raw).Elements()
	for _, e := range elems {
		if e.Key() != "_id" {
			d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return d
}

func (s *Store) upsert(ctx context.Context, what, coll, id string, v any) error {
	return s.do(ctx, what, func(ctx context.Context) error {
		_, err := s.db.Collection(coll).ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, withID(id, v), options.Replace().SetUpsert(true))
		return err
	})
}

// Clear drops the metadata database: the state of a finished run, or of
// another run the operator asked to start over from. Never call it for the
// run being resumed.
func (s *Store) Clear(ctx context.Context) error {
	return s.do(ctx, "drop the metadata database", func(ctx context.Context) error { return s.db.Drop(ctx) })
}
