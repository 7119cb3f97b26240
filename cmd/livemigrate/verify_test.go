package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/verify"
)

func TestVerifyCommandExitCodes(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	ctx := context.Background()
	docs := []any{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}}, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: "y"}}}
	for _, c := range [](func() error){
		func() error { _, err := src.Database("shop").Collection("orders").InsertMany(ctx, docs); return err },
		func() error { _, err := dst.Database("shop").Collection("orders").InsertMany(ctx, docs); return err },
		func() error { _, err := src.Database("shop").Collection("logs").InsertMany(ctx, docs); return err },
		func() error { _, err := dst.Database("shop").Collection("logs").InsertMany(ctx, docs[:1]); return err },
	} {
		if err := c(); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"verify", "--source", srcSrv.URI(), "--destination", dstSrv.URI(), "--rechecks", "1"}
	exec := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append(append([]string(nil), base...), args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, stderr := exec("--exclude", "shop.logs")
	if code != exitOK {
		t.Fatalf("equal namespaces: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "shop.orders") || !strings.Contains(out, "source and destination are equal") {
		t.Errorf("table output lacks the namespace or the verdict:\n%s", out)
	}

	code, out, stderr = exec("-o", "json", "--fresh")
	if code != exitMismatch {
		t.Fatalf("missing document: exit %d, want %d\nstderr:\n%s", code, exitMismatch, stderr)
	}
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-o json output does not parse: %v\n%s", err, out)
	}
	if rep.Totals.Missing != 1 || rep.Totals.Matched != 3 || rep.Totals.NamespacesDiffer != 1 {
		t.Errorf("json totals = %+v, want 1 missing, 3 matched, 1 namespace differing", rep.Totals)
	}

	if code, _, stderr := exec("--include", "shop."); code != exitUsage {
		t.Errorf("bad --include: exit %d, want %d (stderr %s)", code, exitUsage, stderr)
	}
	if code, _, stderr := exec("--repair", "--fresh"); code != exitOK {
		t.Errorf("--repair: exit %d, want 0 (stderr %s)", code, stderr)
	}
	if code, _, stderr := exec(); code != exitOK {
		t.Errorf("after --repair: exit %d, want 0 (stderr %s)", code, stderr)
	}
}

// verify with source = destination (one server as 127.0.0.1 and as
// localhost) is refused before it writes anything: old code said "equal"
// and kept its progress in the source.
func TestVerifySameDeploymentRefused(t *testing.T) {
	t.Parallel()
	srv := mongotest.StartSource(t)
	c := mongotest.Client(t, srv)
	ctx := context.Background()
	docs := []any{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}}, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: "y"}}}
	if _, err := c.Database("shop").Collection("orders").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	dbsBefore, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	alias := srv.URIFor(strings.Replace(srv.Addr(), "127.0.0.1", "localhost", 1))
	var out, errb bytes.Buffer
	code := run([]string{"verify", "--source", srv.URI(), "--destination", alias, "--repair"}, strings.NewReader(""), &out, &errb)
	if code != exitFailure || !strings.Contains(errb.String(), "same deployment") {
		t.Fatalf("verify source = destination: exit %d, want %d saying the same deployment\nstdout:\n%s\nstderr:\n%s", code, exitFailure, out.String(), errb.String())
	}
	if strings.Contains(out.String(), "equal") {
		t.Errorf("verify printed a verdict: %s", out.String())
	}
	dbsAfter, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dbsBefore, dbsAfter) {
		t.Errorf("source databases %v before, %v after (verify wrote its progress into the source?)", dbsBefore, dbsAfter)
	}
	var got []bson.D
	cur, err := c.Database("shop").Collection("orders").Find(ctx, bson.D{})
	if err != nil || cur.All(ctx, &got) != nil || len(got) != 2 {
		t.Errorf("source shop.orders after verify: %v (%v), want the 2 documents", got, err)
	}
}
