package checkpoint

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Collection is one namespace's copy state.
type Collection struct {
	NS    migration.Namespace `bson:"ns"`
	State migration.CopyState `bson:"state"`
	// Estimates taken when the namespace was planned.
	EstimatedDocuments int64 `bson:"estimatedDocuments"`
	EstimatedBytes     int64 `bson:"estimatedBytes"`
	// Copied counts, exact once State is copied or indexed.
	CopiedDocuments int64 `bson:"copiedDocuments"`
	CopiedBytes     int64 `bson:"copiedBytes"`
	// Refusal is the destination's reason when State is skipped.
	Refusal   string    `bson:"refusal,omitempty"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// SetCollection stores c (replacing what was stored for its namespace).
func (s *Store) SetCollection(ctx context.Context, c Collection) error {
	c.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	return s.upsert(ctx, "record copy state of "+c.NS.String(), collCopy, c.NS.String(), c)
}

// Collections returns every stored copy state by namespace.
func (s *Store) Collections(ctx context.Context) (map[migration.Namespace]Collection, error) {
	out := map[migration.Namespace]Collection{}
	err := s.do(ctx, "read copy state", func(ctx context.Context) error {
		clear(out)
		cur, err := s.db.Collection(collCopy).Find(ctx, bson.D{})
		if err != nil {
			return err
		}
		var list []Collection
		if err := cur.All(ctx, &list); err != nil {
			return err
		}
		for _, c := range list {
			out[c.NS] = c
		}
		return nil
	})
	return out, err
}

// RelaxedIndex is a unique index built without "unique" during sync, to be
// restored at commit.
type RelaxedIndex struct {
	NS   migration.Namespace `bson:"ns"`
	Name string              `bson:"name"`
	// Spec is the source's spec (with "unique": true), v/ns stripped.
	Spec     bson.Raw `bson:"spec"`
	Restored bool     `bson:"restored"`
}

func (r RelaxedIndex) id() string { return r.NS.String() + "/" + r.Name }

// AddRelaxed records a relaxed unique index; call it before building the
// relaxed index so a crash cannot leave one unrecorded.
func (s *Store) AddRelaxed(ctx context.Context, r RelaxedIndex) error {
	return s.upsert(ctx, "record relaxed index "+r.id(), collIndexes, r.id(), r)
}

// MarkRestored records that r is unique again on the destination.
func (s *Store) MarkRestored(ctx context.Context, r RelaxedIndex) error {
	r.Restored = true
	return s.upsert(ctx, "record restored index "+r.id(), collIndexes, r.id(), r)
}

// Relaxed returns every recorded relaxed index, restored or not.
func (s *Store) Relaxed(ctx context.Context) ([]RelaxedIndex, error) {
	var list []RelaxedIndex
	err := s.do(ctx, "read relaxed indexes", func(ctx context.Context) error {
		cur, err := s.db.Collection(collIndexes).Find(ctx, bson.D{})
		if err != nil {
			return err
		}
		list = nil
		return cur.All(ctx, &list)
	})
	return list, err
}

// SaveState stores v under key: the generic durable place for other stages'
// checkpoints (e.g. the change-application position). v must marshal to a
// BSON document. Saving is atomic per key.
func (s *Store) SaveState(ctx context.Context, key string, v any) error {
	return s.upsert(ctx, "save state "+key, collState, key, stateDoc{Value: v, UpdatedAt: time.Now().UTC()})
}

// LoadState decodes the value stored under key into out and reports whether
// there was one.
func (s *Store) LoadState(ctx context.Context, key string, out any) (bool, error) {
	found := false
	err := s.do(ctx, "load state "+key, func(ctx context.Context) error {
		var d struct {
			Value bson.RawValue `bson:"value"`
		}
		err := s.db.Collection(collState).FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return d.Value.Unmarshal(out)
	})
	return found, err
}

type stateDoc struct {
	Value     any       `bson:"value"`
	UpdatedAt time.Time `bson:"updatedAt"`
}
