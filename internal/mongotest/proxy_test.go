package mongotest

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestProxyFaults(t *testing.T) {
	t.Parallel()
	srv := StartDestination(t)
	p := NewProxy(t, srv.Addr())
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URIFor(p.Addr())).SetServerSelectionTimeout(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	ping := func(timeout time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
		return time.Since(start), err
	}
	if _, err := ping(5 * time.Second); err != nil {
		t.Fatalf("ping through a passing proxy: %v", err)
	}

	t.Run("latency", func(t *testing.T) {
		p.Latency(150*time.Millisecond, 0)
		defer p.Pass()
		took, err := ping(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 300*time.Millisecond { // request and reply each delayed
			t.Fatalf("ping took %v with 150ms latency each way, want >= 300ms", took)
		}
	})

	t.Run("blackhole ends by itself", func(t *testing.T) {
		p.Blackhole(2 * time.Second)
		if _, err := ping(500 * time.Millisecond); err == nil {
			t.Fatal("ping succeeded through a blackhole")
		}
		time.Sleep(2 * time.Second)
		if _, err := ping(5 * time.Second); err != nil {
			t.Fatalf("ping after the blackhole ended: %v", err)
		}
	})

	t.Run("reset", func(t *testing.T) {
		coll := c.Database("app").Collection("big")
		docs := make([]any, 2000)
		for i := range docs {
			docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: string(make([]byte, 512))}}
		}
		if _, err := coll.InsertMany(context.Background(), docs); err != nil {
			t.Fatal(err)
		}
		cur, err := coll.Find(context.Background(), bson.D{}, options.Find().SetBatchSize(10))
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close(context.Background())
		p.ResetAll()
		n := 0
		for cur.Next(context.Background()) {
			n++
		}
		if cur.Err() == nil {
			t.Fatalf("cursor read %d documents after all connections were reset, want an error", n)
		}
		if _, err := ping(5 * time.Second); err != nil {
			t.Fatalf("ping on a new connection after reset: %v", err)
		}
	})
}
