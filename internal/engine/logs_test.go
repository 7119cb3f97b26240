package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// checkJSONObject reads one JSON value from dec, which has just returned
// the '{' of an object at path, and fails on a key the object repeats
// (encoding/json's Unmarshal would keep the last one silently) and on a
// position logged as a bare {T, I} struct instead of in FormatTS's form.
func checkJSONObject(dec *json.Decoder, path string) error {
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%s: key %v is not a string", path, tok)
		}
		if slices.Contains(keys, k) {
			return fmt.Errorf("%s: key %q appears twice", path, k)
		}
		keys = append(keys, k)
		if err := checkJSONValue(dec, path+"."+k); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	slices.Sort(keys)
	if slices.Equal(keys, []string{"I", "T"}) {
		return fmt.Errorf("%s: a timestamp logged as a struct {T, I}; log it as a migration.Position or with migration.FormatTS", path)
	}
	return nil
}

func checkJSONValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return checkJSONObject(dec, path)
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkJSONValue(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	if s, ok := tok.(string); ok && strings.Contains(s, "{T:") {
		return fmt.Errorf("%s: %q formats a timestamp as {T:… I:…}; use migration.FormatTS", path, s)
	}
	return nil
}

// checkLogLine decodes one JSON log record token by token.
func checkLogLine(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("a record is not a JSON object")
	}
	if err := checkJSONObject(dec, "record"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data after the record (%v)", err)
	}
	return nil
}

func TestCheckLogLineCatchesWhatItMust(t *testing.T) {
	t.Parallel()
	for line, bad := range map[string]bool{
		`{"msg":"m","component":"engine","ts":"Timestamp(1, 2)"}`:        false,
		`{"msg":"m","a":{"b":[{"c":1},{"c":2}]}}`:                        false,
		`{"msg":"m","component":"engine","component":"apply"}`:           true,
		`{"msg":"m","a":{"b":1,"b":2}}`:                                  true,
		`{"msg":"m","ts":{"T":1,"I":2}}`:                                 true,
		`{"msg":"m","ts":"{T:1 I:2}"}`:                                   true,
		`{"msg":"m"} {}`:                                                 true,
		`{"msg":"m","list":[{"x":1,"x":1}]}`:                             true,
		`{"msg":"m","n":1.5,"ok":true,"nil":null,"s":"Timestamp(0, 0)"}`: false,
	} {
		if err := checkLogLine(line); (err != nil) != bad {
			t.Errorf("checkLogLine(%s) = %v, want an error: %v", line, err, bad)
		}
	}
}

// TestJSONLogsHaveOneKeySet runs a short migration (copy, change
// application with writes and a DDL, commit) with a JSON log and checks
// every record: unique keys at every level, one component, positions in
// one format.
func TestJSONLogsHaveOneKeySet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src := mongotest.Client(t, srcSrv)
	items := migration.Namespace{DB: "app", Coll: "items"}
	seed(t, src, items, 0, 200)

	var out mongotest.LockedBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := New(Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}, logger)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()
	mongotest.WaitFor(t, "change application", 60*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })
	seed(t, src, items, 200, 50)
	if _, err := src.Database("app").Collection("items").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -1}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Database("app").Collection("more").InsertOne(ctx, bson.D{{Key: "_id", Value: "m1"}}); err != nil {
		t.Fatal(err)
	}
	mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	components := map[string]int{}
	var copyScan any
	var verifyScans []string
	for i, line := range lines {
		if err := checkLogLine(line); err != nil {
			t.Errorf("log line %d: %v\n%s", i+1, err, line)
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %d: %v", i+1, err)
		}
		c, _ := rec["component"].(string)
		components[c]++
		// The copy and the verifier read FerretDB with its cheaper scan.
		switch rec["msg"] {
		case "copy planned":
			copyScan = rec["scan"]
		case "scan method":
			verifyScans = append(verifyScans, fmt.Sprint(rec["side"], "=", rec["method"]))
		}
	}
	if copyScan != string(mdb.ScanAggregate) {
		t.Errorf(`"copy planned" says scan=%v, want %q on a FerretDB source`, copyScan, mdb.ScanAggregate)
	}
	if slices.Sort(verifyScans); !slices.Equal(slices.Compact(verifyScans), []string{"destination=aggregate", "source=aggregate"}) {
		t.Errorf(`verification's "scan method" records: %v, want aggregate on both FerretDB sides`, verifyScans)
	}
	t.Logf("%d log records by component: %v", len(lines), components)
	// The run logs from the engine and from its stages, each under its
	// own name: a check that saw only one of them would prove little.
	for _, c := range []string{"engine", "clone", "capture", "apply", "verify"} {
		if components[c] == 0 {
			t.Errorf("no record with component=%s among %d (by component: %v)", c, len(lines), components)
		}
	}
}
