package mongotest

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestSourceIsReplicaSetWithOplog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := StartSource(t)
	c := Client(t, src)

	var hello struct {
		SetName string   `bson:"setName"`
		Hosts   []string `bson:"hosts"`
	}
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		t.Fatal(err)
	}
	if hello.SetName != "rs0" {
		t.Fatalf("hello setName = %q, want rs0", hello.SetName)
	}
	if _, err := c.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Op string         `bson:"op"`
		NS string         `bson:"ns"`
		TS bson.Timestamp `bson:"ts"`
	}
	if err := c.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{{Key: "ns", Value: "app.c"}}).Decode(&entry); err != nil {
		t.Fatalf("oplog entry for the insert: %v", err)
	}
	if entry.Op != "i" || entry.TS.T == 0 {
		t.Fatalf("oplog entry = %+v, want an insert with a timestamp", entry)
	}
}

func TestKillRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := StartSource(t)
	c := Client(t, srv)
	coll := c.Database("app").Collection("c")
	docs := make([]any, 500)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i * 2}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Database("admin").RunCommand(pctx, bson.D{{Key: "ping", Value: 1}}).Err(); err == nil {
		t.Fatal("ping succeeded against a killed server")
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatalf("count after restart: %v", err)
	}
	if n != 500 {
		t.Fatalf("after kill -9 and restart: %d documents, want 500", n)
	}
}

func TestAuthRefusesBadPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := StartServer(t, WithAuth("alice", "s3cret"))
	good := Client(t, srv)
	if err := good.Database("admin").RunCommand(ctx, bson.D{{Key: "listDatabases", Value: 1}}).Err(); err != nil {
		t.Fatalf("authenticated listDatabases: %v", err)
	}
	bad, err := mongo.Connect(options.Client().ApplyURI("mongodb://alice:wrong@" + srv.Addr() + "/?directConnection=true&authSource=admin").SetServerSelectionTimeout(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Disconnect(ctx)
	err = bad.Database("admin").RunCommand(ctx, bson.D{{Key: "listDatabases", Value: 1}}).Err()
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	t.Logf("wrong password refused: %v", err)
}

func TestTLSRefusesPlainClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := StartServer(t, WithTLS())
	c := Client(t, srv)
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		t.Fatalf("TLS ping with the CA: %v", err)
	}
	plain, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + srv.Addr() + "/?directConnection=true").SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Disconnect(ctx)
	if err := plain.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err == nil {
		t.Fatal("plain-text client accepted by a TLS-only server")
	}
	noCA, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + srv.Addr() + "/?directConnection=true&tls=true").SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer noCA.Disconnect(ctx)
	err = noCA.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
	if err == nil {
		t.Fatal("client without the CA accepted an untrusted certificate")
	}
}

func TestPostgreSQLBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := StartSource(t, WithPostgreSQL())
	c := Client(t, srv)
	if _, err := c.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "pg"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Database("app").Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: "pg"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Database("app").Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: "pg"}}).Err(); errors.Is(err, mongo.ErrNoDocuments) || err != nil {
		t.Fatalf("document after restart on PostgreSQL: %v", err)
	}
}
