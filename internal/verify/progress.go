package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Stages of a namespace's verification, as persisted.
const (
	stageDigested = "digested" // pass 1 done: the differing buckets are known
	stageDone     = "done"     // result final
)

// runDoc marks a run in the progress collection.
type runDoc struct {
	ID        string    `bson:"_id"`
	Run       string    `bson:"run"`
	State     string    `bson:"state"` // "running" or "done"
	Settings  string    `bson:"settings"`
	StartedAt time.Time `bson:"startedAt"`
}

// nsProgress is one namespace's persisted progress within a run.
type nsProgress struct {
	ID        string `bson:"_id"`
	Run       string `bson:"run"`
	Namespace string `bson:"namespace"`
	Stage     string `bson:"stage"`
	// Digested: counts from pass 1, and the buckets whose digests differ
	// with their sizes (source + destination documents).
	SourceCount int64   `bson:"sourceCount"`
	DestCount   int64   `bson:"destinationCount"`
	DiffBuckets []int   `bson:"diffBuckets,omitempty"`
	BucketSizes []int64 `bson:"bucketSizes,omitempty"`
	// Done: the result as JSON (the report's own format).
	Result string `bson:"result,omitempty"`
}

// store persists progress in the destination's metadata database.
type store struct {
	coll *mongo.Collection
	run  string
}

func (v *Verifier) progressStore() *store {
	return &store{coll: v.opts.Destination.Database(v.opts.MetadataDB).Collection(ProgressCollection), run: v.runID}
}

// settings fingerprints what must not change for progress to be reusable.
func (v *Verifier) settings() string {
	b, _ := json.Marshal(struct {
		Include, Exclude []migration.Filter
		IgnoreFieldOrder bool
		Repair           bool
		Buckets          int
	}{v.opts.Include, v.opts.Exclude, v.opts.IgnoreFieldOrder, v.opts.Repair, v.opts.Buckets})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:12])
}

// begin starts or resumes the run: an interrupted run with the same id and
// settings is resumed; anything else is discarded and a new run begins.
func (s *store) begin(ctx context.Context, settings string, fresh bool) (resumed bool, err error) {
	var r runDoc
	err = s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: "run:" + s.run}}).Decode(&r)
	switch {
	case err == nil && !fresh && r.State == "running" && r.Settings == settings:
		return true, nil
	case err != nil && err != mongo.ErrNoDocuments:
		return false, fmt.Errorf("read verification progress: %w", err)
	}
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "run", Value: s.run}}); err != nil {
		return false, fmt.Errorf("clear verification progress: %w", err)
	}
	r = runDoc{ID: "run:" + s.run, Run: s.run, State: "running", Settings: settings, StartedAt: time.Now().UTC()}
	if _, err := s.coll.InsertOne(ctx, r); err != nil {
		return false, fmt.Errorf("record verification run: %w", err)
	}
	return false, nil
}

// finish marks the run done, so the next run with this id starts over.
func (s *store) finish(ctx context.Context) error {
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "run:" + s.run}}, bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "done"}}}})
	if err != nil {
		return fmt.Errorf("record verification run finished: %w", err)
	}
	return nil
}

// load returns the run's namespace progress by namespace. It reads the
// whole run in one query (one scan on servers without _id lookups).
func (s *store) load(ctx context.Context) (map[string]nsProgress, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "run", Value: s.run}, {Key: "namespace", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return nil, fmt.Errorf("read verification progress: %w", err)
	}
	var ps []nsProgress
	if err := cur.All(ctx, &ps); err != nil {
		return nil, fmt.Errorf("read verification progress: %w", err)
	}
	out := make(map[string]nsProgress, len(ps))
	for _, p := range ps {
		out[p.Namespace] = p
	}
	return out, nil
}

// save records a namespace's progress (idempotent); a nil store saves nothing.
func (s *store) save(ctx context.Context, p nsProgress) error {
	if s == nil {
		return nil
	}
	p.ID = s.run + "|" + p.Namespace
	p.Run = s.run
	_, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.ID}}, p, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save verification progress of %s: %w", p.Namespace, err)
	}
	return nil
}
