package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func testSpec(src api.MigrationSource, dst *mongotest.Server) api.MigrationSpec {
	src.ClusterName, src.GroupID = "src", "g1"
	return api.MigrationSpec{
		Request: api.MigrationRequest{
			Source:         src,
			Destination:    api.MigrationDestination{ClusterName: "dst", GroupID: "g2", HostnameSchemaType: api.HostnamePublic},
			MigrationHosts: []string{"host1"},
		},
		Destination: api.DestinationCluster{Name: "dst", ConnectionString: dst.URI()},
	}
}

// check returns the named check of res, failing the test when it is absent.
func check(t *testing.T, res api.ValidationResult, name string) api.ValidationCheck {
	t.Helper()
	for _, c := range res.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", name, res.Checks)
	return api.ValidationCheck{}
}

func wantCheck(t *testing.T, res api.ValidationResult, name string, status api.CheckStatus, msgPart string) {
	t.Helper()
	c := check(t, res, name)
	if c.Status != status || !strings.Contains(c.Message, msgPart) {
		t.Errorf("check %s = %s %q, want %s containing %q", name, c.Status, c.Message, status, msgPart)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := mongotest.StartSource(t, mongotest.WithAuth("migrator", "s3cret"))
	dst := mongotest.StartDestination(t)
	sc := mongotest.Client(t, src)
	for _, ns := range []string{"shop.orders", "shop.customers", "crm.leads"} {
		db, coll, _ := strings.Cut(ns, ".")
		if _, err := sc.Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	// The agent's configured connection string has the user but no password.
	configured := Source{Name: "src", URI: mdb.URI(strings.Replace(src.URI(), ":s3cret@", "@", 1))}
	if strings.Contains(configured.URI.Raw(), "s3cret") {
		t.Fatalf("test setup: password still in %s", configured.URI)
	}

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		res := Validate(ctx, testSpec(api.MigrationSource{Username: "migrator", Password: "s3cret"}, dst), configured, ValidationOptions{Hostname: "host1"})
		if res.Status != api.ValidationSuccess {
			t.Fatalf("status %s: %s\n%+v", res.Status, res.ErrorMessage, res.Checks)
		}
		wantCheck(t, res, CheckSourceAuthentication, api.CheckPassed, "authenticated")
		wantCheck(t, res, CheckSourceTopology, api.CheckPassed, "replica set rs0")
		wantCheck(t, res, CheckVersions, api.CheckPassed, "7.0.42")
		wantCheck(t, res, CheckSourceRoles, api.CheckSkipped, "could not be checked: the source (FerretDB")
		wantCheck(t, res, CheckSourceMechanisms, api.CheckPassed, "SCRAM-SHA-1 and SCRAM-SHA-256")
		wantCheck(t, res, CheckChangeCapture, api.CheckPassed, "oplog")
		wantCheck(t, res, CheckDatabaseStatistics, api.CheckPassed, "2 source databases")
		wantCheck(t, res, CheckDestinationDisk, api.CheckSkipped, "could not be checked")
		wantCheck(t, res, CheckDestinationNamespaces, api.CheckPassed, "none of the source's 3 namespaces")
	})

	t.Run("managed authentication with the configured password", func(t *testing.T) {
		t.Parallel()
		s := configured
		s.Password = "s3cret"
		res := Validate(ctx, testSpec(api.MigrationSource{ManagedAuthentication: true}, dst), s, ValidationOptions{})
		if res.Status != api.ValidationSuccess {
			t.Fatalf("status %s: %s", res.Status, res.ErrorMessage)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		res := Validate(ctx, testSpec(api.MigrationSource{Username: "migrator", Password: "wrong"}, dst), configured, ValidationOptions{})
		if res.Status != api.ValidationFailed {
			t.Fatalf("status %s, want FAILED", res.Status)
		}
		wantCheck(t, res, CheckSourceConnectivity, api.CheckPassed, "reaches source src")
		wantCheck(t, res, CheckSourceAuthentication, api.CheckFailed, "authentication failed")
		if strings.Contains(res.ErrorMessage, "wrong") {
			t.Errorf("error message leaks the password: %s", res.ErrorMessage)
		}
		if !strings.Contains(res.ErrorMessage, "authentication failed") {
			t.Errorf("error message %q does not say authentication failed", res.ErrorMessage)
		}
	})

	t.Run("version below the configured minimum", func(t *testing.T) {
		t.Parallel()
		res := Validate(ctx, testSpec(api.MigrationSource{Username: "migrator", Password: "s3cret"}, dst), configured, ValidationOptions{MinVersion: "8.0.0"})
		if res.Status != api.ValidationFailed {
			t.Fatalf("status %s, want FAILED", res.Status)
		}
		wantCheck(t, res, CheckVersions, api.CheckFailed, "source MongoDB 7.0.42 is older than the configured minimum version 8.0.0")
	})

	t.Run("existing namespaces", func(t *testing.T) {
		t.Parallel()
		dst2 := mongotest.StartDestination(t)
		dc := mongotest.Client(t, dst2)
		if _, err := dc.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "y", Value: 1}}); err != nil {
			t.Fatal(err)
		}
		spec := testSpec(api.MigrationSource{Username: "migrator", Password: "s3cret"}, dst2)
		res := Validate(ctx, spec, configured, ValidationOptions{})
		wantCheck(t, res, CheckDestinationNamespaces, api.CheckFailed, "1 of the source's namespaces already exist on the destination: shop.orders")
		if res.Status != api.ValidationFailed {
			t.Errorf("status %s, want FAILED", res.Status)
		}
		spec.Request.DropDestinationData = true
		res = Validate(ctx, spec, configured, ValidationOptions{})
		wantCheck(t, res, CheckDestinationNamespaces, api.CheckWarning, "will be dropped")
		if res.Status != api.ValidationSuccess {
			t.Errorf("status with dropDestinationData %s (%s), want SUCCESS", res.Status, res.ErrorMessage)
		}

		// Another migration's state on the destination.
		if _, err := dc.Database("__livemigrate").Collection("run").InsertOne(ctx, bson.D{{Key: "_id", Value: "run"}}); err != nil {
			t.Fatal(err)
		}
		spec.Request.DropDestinationData = false
		res = Validate(ctx, spec, configured, ValidationOptions{})
		wantCheck(t, res, CheckOtherMigration, api.CheckFailed, "already holds the state of a migration (database __livemigrate)")
		// With dropDestinationData the engine drops that state first.
		spec.Request.DropDestinationData = true
		res = Validate(ctx, spec, configured, ValidationOptions{})
		wantCheck(t, res, CheckOtherMigration, api.CheckWarning, "it is dropped when the migration starts")
		if res.Status != api.ValidationSuccess {
			t.Errorf("status with dropDestinationData over another run's state %s (%s), want SUCCESS", res.Status, res.ErrorMessage)
		}
		// A finished migration's state never blocks the next one.
		if _, err := dc.Database("__livemigrate").Collection("state").InsertOne(ctx, bson.D{{Key: "_id", Value: "commit"}, {Key: "value", Value: bson.D{{Key: "verified", Value: true}}}}); err != nil {
			t.Fatal(err)
		}
		spec.Request.DropDestinationData = false
		res = Validate(ctx, spec, configured, ValidationOptions{})
		wantCheck(t, res, CheckOtherMigration, api.CheckWarning, "the metadata of a finished migration")
	})
}

func TestValidateStandaloneSource(t *testing.T) {
	t.Parallel()
	src := mongotest.StartServer(t, mongotest.Standalone())
	dst := mongotest.StartDestination(t)
	res := Validate(context.Background(), testSpec(api.MigrationSource{}, dst), Source{Name: "src", URI: mdb.URI(src.URI())}, ValidationOptions{})
	if res.Status != api.ValidationFailed {
		t.Fatalf("status %s, want FAILED", res.Status)
	}
	wantCheck(t, res, CheckSourceTopology, api.CheckFailed, "standalone server")
	wantCheck(t, res, CheckSourceTopology, api.CheckFailed, "convert it to a replica set first")
	wantCheck(t, res, CheckSourceRoles, api.CheckWarning, "without a user")
}

func TestValidateTLS(t *testing.T) {
	t.Parallel()
	src := mongotest.StartSource(t, mongotest.WithTLS())
	dst := mongotest.StartDestination(t)
	configured := Source{Name: "src", URI: mdb.URI(src.URI())}

	t.Run("missing CA file", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "no-such-ca.pem")
		res := Validate(context.Background(), testSpec(api.MigrationSource{SSL: true, CACertificatePath: missing}, dst), configured, ValidationOptions{Hostname: "host1"})
		if res.Status != api.ValidationFailed {
			t.Fatalf("status %s, want FAILED", res.Status)
		}
		wantCheck(t, res, CheckSourceTLS, api.CheckFailed, "the TLS CA file "+missing+" does not exist on migration host host1")
		wantCheck(t, res, CheckSourceConnectivity, api.CheckSkipped, "TLS is not configured correctly")
	})

	t.Run("CA file", func(t *testing.T) {
		t.Parallel()
		res := Validate(context.Background(), testSpec(api.MigrationSource{SSL: true, CACertificatePath: src.TLSFiles().CA}, dst), configured, ValidationOptions{})
		if res.Status != api.ValidationSuccess {
			t.Fatalf("status %s: %s", res.Status, res.ErrorMessage)
		}
		wantCheck(t, res, CheckSourceTLS, api.CheckPassed, "TLS handshake succeeded")
	})

	t.Run("unreachable destination", func(t *testing.T) {
		t.Parallel()
		spec := testSpec(api.MigrationSource{SSL: true, CACertificatePath: src.TLSFiles().CA}, dst)
		spec.Destination.ConnectionString = "mongodb://127.0.0.1:1/?directConnection=true"
		res := Validate(context.Background(), spec, configured, ValidationOptions{Timeout: 2e9})
		wantCheck(t, res, CheckDestinationConnectivity, api.CheckFailed, "cannot reach destination dst")
	})
}

// sourceDigest hashes every document of every user database (raw bytes,
// sorted) and the database and collection names.
func sourceDigest(t *testing.T, c *mongo.Client) string {
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
			continue // the oplog logs the probe when source and destination are one server
		}
		colls, err := c.Database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(colls)
		for _, coll := range colls {
			h.Write([]byte(db + "." + coll + "\x00"))
			cur, err := c.Database(db).Collection(coll).Find(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			var docs []string
			for cur.Next(ctx) {
				docs = append(docs, string(cur.Current))
			}
			slices.Sort(docs)
			for _, d := range docs {
				h.Write([]byte(d))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The same deployment registered as source and destination (reached as
// 127.0.0.1 and as localhost), with "clear existing data": FAILED, and the
// source is byte-identical after the validation.
func TestValidateSameDeployment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mongotest.StartSource(t)
	sc := mongotest.Client(t, srv)
	for i := range 200 {
		if _, err := sc.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "x", Value: "y"}}); err != nil {
			t.Fatal(err)
		}
	}
	before := sourceDigest(t, sc)
	spec := testSpec(api.MigrationSource{}, srv)
	spec.Destination.ConnectionString = srv.URIFor(strings.Replace(srv.Addr(), "127.0.0.1", "localhost", 1))
	spec.Request.DropDestinationData = true
	res := Validate(ctx, spec, Source{Name: "src", URI: mdb.URI(srv.URI())}, ValidationOptions{})
	if res.Status != api.ValidationFailed {
		t.Fatalf("status %s, want FAILED\n%+v", res.Status, res.Checks)
	}
	wantCheck(t, res, CheckDistinctDeployments, api.CheckFailed, "the source and the destination are the same deployment")
	if !strings.Contains(res.ErrorMessage, "same deployment") {
		t.Errorf("error message %q does not say source and destination are the same", res.ErrorMessage)
	}
	if after := sourceDigest(t, sc); after != before {
		t.Errorf("validation changed the source (digest %s before, %s after)", before, after)
	}
}

// A replica set without local.oplog.rs cannot be migrated: FAILED (collStats
// of the missing oplog succeeds on FerretDB and proves nothing).
func TestValidateReplicaSetWithoutOplog(t *testing.T) {
	t.Parallel()
	src := mongotest.StartServer(t, func(o *mongotest.Options) { o.ReplSet = "rs0" })
	dst := mongotest.StartDestination(t)
	res := Validate(context.Background(), testSpec(api.MigrationSource{}, dst), Source{Name: "src", URI: mdb.URI(src.URI())}, ValidationOptions{})
	if res.Status != api.ValidationFailed {
		t.Fatalf("status %s, want FAILED\n%+v", res.Status, res.Checks)
	}
	wantCheck(t, res, CheckSourceTopology, api.CheckPassed, "replica set rs0")
	wantCheck(t, res, CheckChangeCapture, api.CheckFailed, "no local.oplog.rs")
	wantCheck(t, res, CheckDistinctDeployments, api.CheckPassed, "different deployments")
	if dbs, _ := mongotest.Client(t, dst).ListDatabaseNames(context.Background(), bson.D{}); len(dbs) != 0 {
		t.Errorf("validation left databases on the destination: %v", dbs)
	}
}
