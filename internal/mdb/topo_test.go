package mdb_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func TestParseAndCheckVersions(t *testing.T) {
	for s, want := range map[string]mdb.Version{"7.0.13": {7, 0, 13}, "8.0.0-rc1": {8, 0, 0}, "6.0": {6, 0, 0}} {
		if v, err := mdb.ParseVersion(s); err != nil || v != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", s, v, err, want)
		}
	}
	for _, bad := range []string{"", "7", "x.y", "7.-1"} {
		if _, err := mdb.ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", bad)
		}
	}
	info := func(s string) mdb.ServerInfo {
		v, err := mdb.ParseVersion(s)
		return mdb.ServerInfo{VersionString: s, Version: v, VersionErr: err}
	}
	for _, c := range []struct{ src, dst, min, want string }{
		{"7.0.13", "7.0.20", "", ""},
		{"7.0.12", "7.0.20", "", "source MongoDB 7.0.12 is older than 7.0.13"},
		{"6.0.17", "7.0.13", "", "differ in major version"},
		{"5.0.9", "5.0.9", "", "before 6.0 are not supported"},
		{"7.0.42", "7.0.42", "8.0.0", "older than the configured minimum version 8.0.0"},
	} {
		err := mdb.CheckVersions(info(c.src), info(c.dst), c.min)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckVersions(%s, %s, %q) = %v, want %q", c.src, c.dst, c.min, err, c.want)
		}
	}
}

// Probe on the three shapes of test server: a replica set with an oplog, a
// replica set without one (collStats and find of the missing oplog succeed
// on FerretDB: listCollections decides), a standalone server.
func TestProbe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	withOplog := mongotest.StartSource(t)
	noOplog := mongotest.StartServer(t, func(o *mongotest.Options) { o.ReplSet = "rs0" })
	standalone := mongotest.StartServer(t, mongotest.Standalone())

	si, err := mdb.Probe(ctx, mongotest.Client(t, withOplog))
	if err != nil {
		t.Fatal(err)
	}
	if si.Topology != mdb.ReplicaSet || si.SetName != "rs0" || !slices.Equal(si.Hosts, []string{withOplog.Addr()}) ||
		si.FerretDB == "" || si.Version != (mdb.Version{7, 0, 42}) || si.ChangeStreams || si.HasClusterTime ||
		!si.Oplog.Exists || !si.Oplog.Readable || si.Oplog.MaxBytes <= 0 || si.LocalTime.IsZero() {
		t.Errorf("replica set with oplog: %+v", si)
	}
	if err := si.ChangeHistory(); err != nil {
		t.Errorf("replica set with oplog: ChangeHistory = %v", err)
	}

	si, err = mdb.Probe(ctx, mongotest.Client(t, noOplog))
	if err != nil {
		t.Fatal(err)
	}
	if si.Topology != mdb.ReplicaSet || si.Oplog.Exists {
		t.Errorf("replica set without oplog: %+v", si)
	}
	if err := si.ChangeHistory(); !errors.Is(err, mdb.ErrNoChangeHistory) || !strings.Contains(err.Error(), "create the capped collection local.oplog.rs") {
		t.Errorf("replica set without oplog: ChangeHistory = %v, want ErrNoChangeHistory saying to create local.oplog.rs", err)
	}

	si, err = mdb.Probe(ctx, mongotest.Client(t, standalone))
	if err != nil {
		t.Fatal(err)
	}
	if err := si.ChangeHistory(); si.Topology != mdb.Standalone || !errors.Is(err, mdb.ErrNoChangeHistory) || !strings.Contains(err.Error(), "standalone") {
		t.Errorf("standalone: %+v, ChangeHistory = %v", si, err)
	}
}

func probeBoth(t *testing.T, a, b *mongo.Client) (mdb.ServerInfo, mdb.ServerInfo) {
	t.Helper()
	ai, err := mdb.Probe(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	bi, err := mdb.Probe(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return ai, bi
}

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mdb.Connect(context.Background(), "test", mdb.URI(uri), mdb.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func dbNames(t *testing.T, c *mongo.Client) []string {
	t.Helper()
	dbs, err := c.ListDatabaseNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return dbs
}

// ProveDistinct: one server reached as 127.0.0.1 and as localhost is found
// by hello (a replica set) and by the nonce alone (a standalone server, no
// hello facts); two servers are distinct. The probe leaves no database and
// no collection behind.
func TestProveDistinct(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs, standalone, other := mongotest.StartSource(t), mongotest.StartServer(t, mongotest.Standalone()), mongotest.StartDestination(t)
	alias := func(s *mongotest.Server) string {
		return s.URIFor(strings.Replace(s.Addr(), "127.0.0.1", "localhost", 1))
	}
	for _, c := range []struct {
		name     string
		src, dst string
		same     bool
		want     string
	}{
		{"replica set by two addresses", rs.URI(), alias(rs), true, "both are replica set rs0"},
		{"standalone by two addresses", standalone.URI(), alias(standalone), true, "probe document written through the destination"},
		{"two servers", rs.URI(), other.URI(), false, ""},
		{"two standalone servers", standalone.URI(), other.URI(), false, ""},
	} {
		src, dst := connect(t, c.src), connect(t, c.dst)
		si, di := probeBoth(t, src, dst)
		before := dbNames(t, dst)
		err := mdb.ProveDistinct(ctx, src, dst, si, di, "__livemigrate")
		switch {
		case c.same && (!errors.Is(err, mdb.ErrSameDeployment) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want ErrSameDeployment saying %q", c.name, err, c.want)
		case !c.same && err != nil:
			t.Errorf("%s: got %v, want nil", c.name, err)
		}
		if after := dbNames(t, dst); !slices.Equal(before, after) {
			t.Errorf("%s: destination databases %v before the probe, %v after", c.name, before, after)
		}
	}

	// An existing metadata database keeps its collections; only the probe's goes.
	dc := mongotest.Client(t, other)
	if err := dc.Database("__livemigrate").CreateCollection(ctx, "run", options.CreateCollection()); err != nil {
		t.Fatal(err)
	}
	si, di := probeBoth(t, mongotest.Client(t, rs), dc)
	if err := mdb.ProveDistinct(ctx, mongotest.Client(t, rs), dc, si, di, "__livemigrate"); err != nil {
		t.Fatal(err)
	}
	if names, _ := dc.Database("__livemigrate").ListCollectionNames(ctx, bson.D{}); !slices.Equal(names, []string{"run"}) {
		t.Errorf("metadata collections after the probe: %v, want [run]", names)
	}
}
