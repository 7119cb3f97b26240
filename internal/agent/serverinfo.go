package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// serverInfo is what the agent learns about a deployment.
type serverInfo struct {
	Version string // buildInfo.version, e.g. "7.0.13"
	// FerretDB is FerretDB's version when the server is FerretDB.
	FerretDB string
	FCV      string // "" when getParameter cannot tell
	// SetName is the replica-set name ("" for standalone and mongos).
	SetName string
	Sharded bool
	Shards  int
	// OplogBytes is local.oplog.rs's maximum size (0: no oplog or unknown).
	OplogBytes int64
	HasOplog   bool
	// DataBytes is listDatabases' totalSize (0 when it cannot tell).
	DataBytes int64
}

// topology names the deployment's shape for messages.
func (s serverInfo) topology() string {
	switch {
	case s.Sharded:
		return "sharded cluster"
	case s.SetName != "":
		return "replica set " + s.SetName
	default:
		return "standalone server"
	}
}

func runCommand(ctx context.Context, c *mongo.Client, db string, cmd bson.D) (bson.Raw, error) {
	return c.Database(db).RunCommand(ctx, cmd).Raw()
}

// probe collects serverInfo. Only buildInfo and hello are required; the rest
// is filled in when the server answers.
func probe(ctx context.Context, c *mongo.Client) (serverInfo, error) {
	var si serverInfo
	bi, err := runCommand(ctx, c, "admin", bson.D{{Key: "buildInfo", Value: 1}})
	if err != nil {
		return si, fmt.Errorf("buildInfo: %w", err)
	}
	si.Version, _ = bi.Lookup("version").StringValueOK()
	si.FerretDB, _ = bi.Lookup("ferretdbVersion").StringValueOK()
	hello, err := runCommand(ctx, c, "admin", bson.D{{Key: "hello", Value: 1}})
	if err != nil {
		return si, fmt.Errorf("hello: %w", err)
	}
	si.SetName, _ = hello.Lookup("setName").StringValueOK()
	if msg, _ := hello.Lookup("msg").StringValueOK(); msg == "isdbgrid" {
		si.Sharded = true
		if ls, err := runCommand(ctx, c, "admin", bson.D{{Key: "listShards", Value: 1}}); err == nil {
			if arr, ok := ls.Lookup("shards").ArrayOK(); ok {
				vals, _ := arr.Values()
				si.Shards = len(vals)
			}
		}
	}
	if fcv, err := runCommand(ctx, c, "admin", bson.D{{Key: "getParameter", Value: 1}, {Key: "featureCompatibilityVersion", Value: 1}}); err == nil {
		si.FCV, _ = fcv.Lookup("featureCompatibilityVersion", "version").StringValueOK()
	}
	if ld, err := runCommand(ctx, c, "admin", bson.D{{Key: "listDatabases", Value: 1}}); err == nil {
		si.DataBytes = number(ld.Lookup("totalSize"))
	}
	if !si.Sharded {
		if cs, err := runCommand(ctx, c, "local", bson.D{{Key: "collStats", Value: "oplog.rs"}}); err == nil {
			si.HasOplog = true
			si.OplogBytes = number(cs.Lookup("maxSize"))
		}
	}
	return si, nil
}

// number reads any BSON number as int64 (0 otherwise).
func number(v bson.RawValue) int64 {
	if i, ok := v.Int64OK(); ok {
		return i
	}
	if i, ok := v.Int32OK(); ok {
		return int64(i)
	}
	if f, ok := v.DoubleOK(); ok {
		return int64(f)
	}
	return 0
}

// version is a parsed MongoDB version "major.minor.patch".
type version struct{ major, minor, patch int }

func parseVersion(s string) (version, error) {
	var v version
	s, _, _ = strings.Cut(s, "-") // 7.0.13-rc0, 8.0.0-ent
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return v, fmt.Errorf("version %q is not major.minor[.patch]", s)
	}
	nums := make([]int, 3)
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return v, fmt.Errorf("version %q is not major.minor[.patch]", s)
		}
		nums[i] = n
	}
	return version{nums[0], nums[1], nums[2]}, nil
}

func (v version) less(w version) bool {
	if v.major != w.major {
		return v.major < w.major
	}
	if v.minor != w.minor {
		return v.minor < w.minor
	}
	return v.patch < w.patch
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

// minimumFor is the oldest supported release of v's major version, as Atlas
// live migration requires (6.0.17+, 7.0.13+); newer majors have no minimum.
func minimumFor(v version) (version, error) {
	switch {
	case v.major < 6:
		return version{}, errors.New("MongoDB versions before 6.0 are not supported: upgrade to 6.0.17 or 7.0.13 or later")
	case v.major == 6:
		return version{6, 0, 17}, nil
	case v.major == 7:
		return version{7, 0, 13}, nil
	default:
		return version{v.major, 0, 0}, nil
	}
}
