package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// deploymentDigest hashes every database name (but local's) and, per
// collection in name order, its name and its documents' raw bytes in sorted
// order: equal digests mean nothing was written, dropped or created.
func deploymentDigest(t *testing.T, c *mongo.Client) string {
	t.Helper()
	ctx := context.Background()
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(dbs)
	h := sha256.New()
	for _, db := range dbs {
		if db == "local" {
			continue // the oplog logs the probe's write when the two are one server
		}
		h.Write([]byte("db:" + db + "\x00"))
		for _, coll := range collNames(t, c, db) {
			h.Write([]byte("coll:" + coll + "\x00"))
			docs := rawDocs(t, c, migration.Namespace{DB: db, Coll: coll})
			keys := make([]string, 0, len(docs))
			for k := range docs {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				h.Write([]byte(docs[k]))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func databases(t *testing.T, c *mongo.Client) []string {
	t.Helper()
	dbs, err := c.ListDatabaseNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(dbs, func(s string) bool { return s == "local" })
}

// Source = destination (one server reached as 127.0.0.1 and as localhost),
// with dropDestinationData: refused before anything is written or dropped;
// the source is byte-identical after.
func TestSameDeploymentRefused(t *testing.T) {
	t.Parallel()
	srv := mongotest.StartSource(t)
	c := mongotest.Client(t, srv)
	seed(t, c, migration.Namespace{DB: "app", Coll: "users"}, 0, 200)
	seed(t, c, migration.Namespace{DB: "crm", Coll: "leads"}, 0, 20)
	before := deploymentDigest(t, c)
	alias := srv.URIFor(strings.Replace(srv.Addr(), "127.0.0.1", "localhost", 1))
	_, err := runEngine(t, Options{Source: mdb.URI(srv.URI()), Destination: mdb.URI(alias), DropDestinationData: true})
	if after := deploymentDigest(t, c); after != before {
		t.Errorf("the source changed: digest %s before, %s after; databases now %v", before, after, databases(t, c))
	}
	if !errors.Is(err, mdb.ErrSameDeployment) {
		t.Fatalf("source = destination: got %v, want ErrSameDeployment", err)
	}
	if !strings.Contains(err.Error(), "give the connection string of another deployment") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if n, _ := c.Database("app").Collection("users").CountDocuments(context.Background(), bson.D{}); n != 200 {
		t.Errorf("source app.users has %d documents, want 200", n)
	}
}

// A standalone source is refused before the destination is touched; the
// right source then runs into the same destination. A third run from another
// source replaces the second's unfinished metadata with dropDestinationData.
func TestRefusedStartLeavesNothing(t *testing.T) {
	t.Parallel()
	standalone, dstSrv := mongotest.StartServer(t, mongotest.Standalone()), mongotest.StartDestination(t)
	st, dst := mongotest.Client(t, standalone), mongotest.Client(t, dstSrv)
	ns := migration.Namespace{DB: "app", Coll: "users"}
	seed(t, st, ns, 0, 10)
	_, err := runEngine(t, Options{Source: mdb.URI(standalone.URI()), Destination: mdb.URI(dstSrv.URI()), DropDestinationData: true})
	if !errors.Is(err, mdb.ErrNoChangeHistory) || !strings.Contains(err.Error(), "standalone") {
		t.Fatalf("standalone source: got %v, want ErrNoChangeHistory naming a standalone server", err)
	}
	if dbs := databases(t, dst); len(dbs) != 0 {
		t.Fatalf("a refused start left databases on the destination: %v", dbs)
	}

	srcSrv := mongotest.StartSource(t)
	src := mongotest.Client(t, srcSrv)
	seed(t, src, ns, 0, 30)
	if _, err := runEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}); err != nil {
		t.Fatalf("the right source after a refused start: %v", err)
	}
	assertSame(t, src, dst, ns)

	other := mongotest.StartSource(t)
	oc := mongotest.Client(t, other)
	seed(t, oc, ns, 100, 5)
	_, err = runEngine(t, Options{Source: mdb.URI(other.URI()), Destination: mdb.URI(dstSrv.URI())})
	if !errors.Is(err, checkpoint.ErrRunMismatch) {
		t.Fatalf("another source without dropDestinationData: got %v, want ErrRunMismatch", err)
	}
	if _, err := runEngine(t, Options{Source: mdb.URI(other.URI()), Destination: mdb.URI(dstSrv.URI()), DropDestinationData: true}); err != nil {
		t.Fatalf("another source with dropDestinationData: %v", err)
	}
	assertSame(t, oc, dst, ns)
}

// A replica set without local.oplog.rs (collStats of it succeeds on
// FerretDB) is refused before any copy; the destination is left empty.
func TestReplicaSetWithoutOplogRefused(t *testing.T) {
	t.Parallel()
	srcSrv := mongotest.StartServer(t, func(o *mongotest.Options) { o.ReplSet = "rs0" })
	dstSrv := mongotest.StartDestination(t)
	seed(t, mongotest.Client(t, srcSrv), migration.Namespace{DB: "app", Coll: "users"}, 0, 10)
	_, err := runEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())})
	if !errors.Is(err, mdb.ErrNoChangeHistory) || !strings.Contains(err.Error(), "no local.oplog.rs") {
		t.Fatalf("replica set without oplog: got %v, want ErrNoChangeHistory naming local.oplog.rs", err)
	}
	if dbs := databases(t, mongotest.Client(t, dstSrv)); len(dbs) != 0 {
		t.Fatalf("a refused start left databases on the destination: %v", dbs)
	}
}

// After a COMMITTED migration, the next one into the same destination is
// not blocked by the first's metadata: without dropDestinationData it is
// refused for the namespaces only, with it it commits; so does a run without
// a migration ID (the command line).
func TestSecondMigrationAfterCommit(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	ns := migration.Namespace{DB: "app", Coll: "users"}
	seed(t, src, ns, 0, 50)
	opts := Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI()), MigrationID: "m1"}
	e, errc := startEngine(t, opts)
	commitAndCompare(t, e, errc, src, dst, 0)
	noRepairs(t, e)

	seed(t, src, ns, 50, 10)
	opts.MigrationID = "m2"
	_, err := runEngine(t, opts)
	if !errors.Is(err, ErrDestinationNotEmpty) || errors.Is(err, checkpoint.ErrRunMismatch) {
		t.Fatalf("second migration without dropDestinationData: got %v, want ErrDestinationNotEmpty only", err)
	}
	opts.DropDestinationData = true
	e, errc = startEngine(t, opts)
	commitAndCompare(t, e, errc, src, dst, 0)
	noRepairs(t, e)

	// A restart under the same migration ID after the commit (the agent
	// died before it delivered the report) reports the commit again.
	e, errc = startEngine(t, opts)
	select {
	case err := <-errc:
		if p := e.Progress(); err != nil || p.State != migration.StateCommitted || e.CommitReport() == nil {
			t.Fatalf("restart after commit: %v, state %s, report %v; want COMMITTED with the report", err, p.State, e.CommitReport())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("restart after commit did not end in 60s: %+v", e.Progress())
	}

	seed(t, src, ns, 60, 10)
	opts.MigrationID = ""
	e, errc = startEngine(t, opts)
	commitAndCompare(t, e, errc, src, dst, 0)
	noRepairs(t, e)
	var run struct {
		Migration string `bson:"migration"`
	}
	if err := dst.Database(catalog.DefaultMetadataDB).Collection("run").FindOne(context.Background(), bson.D{}).Decode(&run); err != nil || run.Migration != "" {
		t.Errorf("metadata run after the third migration: %+v, %v; want the third run's", run, err)
	}
}

// noRepairs fails the test when verification at commit had to repair
// anything: change application lost or garbled an event.
func noRepairs(t *testing.T, e *Engine) {
	t.Helper()
	if r := e.CommitReport(); r == nil || r.Repaired != 0 {
		t.Errorf("commit report %+v: want 0 repaired", r)
	}
}
