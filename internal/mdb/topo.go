package mdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// Topology is a deployment's shape.
type Topology string

// Topologies.
const (
	Standalone Topology = "standalone"
	ReplicaSet Topology = "replicaSet"
	// Sharded is a sharded cluster reached through mongos.
	Sharded Topology = "sharded"
)

// Version is a parsed server version "major.minor.patch".
type Version struct{ Major, Minor, Patch int }

// ParseVersion parses "7.0.13", "8.0.0-rc1" or "6.0".
func ParseVersion(s string) (Version, error) {
	core, _, _ := strings.Cut(s, "-") // 7.0.13-rc0, 8.0.0-ent
	parts := strings.Split(core, ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("version %q is not major.minor[.patch]", s)
	}
	nums := make([]int, 3)
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("version %q is not major.minor[.patch]", s)
		}
		nums[i] = n
	}
	return Version{nums[0], nums[1], nums[2]}, nil
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Oplog is what a server says about local.oplog.rs.
type Oplog struct {
	// Exists: listCollections on local names oplog.rs. (collStats and find
	// of a missing collection succeed on FerretDB, so they prove nothing.)
	Exists bool
	// Readable: a find with limit 1 on it succeeded.
	Readable bool
	// MaxBytes is its maximum size (0 when unknown).
	MaxBytes int64
	// Err is why Exists or Readable could not be established (nil otherwise).
	Err error
}

// ServerInfo is what a server says it is and what it can do. Probe fills it.
type ServerInfo struct {
	// VersionString is buildInfo.version as reported ("7.0.42").
	VersionString string
	// Version is VersionString parsed (zero when it does not parse; see VersionErr).
	Version    Version
	VersionErr error
	// FerretDB is FerretDB's version ("v1.24.2"), "" on MongoDB.
	FerretDB string
	// FCV is the featureCompatibilityVersion ("" when getParameter cannot tell).
	FCV      string
	Topology Topology
	// SetName is the replica-set name ("" for standalone and mongos).
	SetName string
	// Hosts are the replica set's members from hello (sorted), Me this member.
	Hosts []string
	Me    string
	// Shards counts a sharded cluster's shards (0 when unknown).
	Shards int
	// ClusterTime is the server's operationTime (or $clusterTime) from hello;
	// HasClusterTime says whether it reported one (MongoDB replica sets and
	// mongos do, FerretDB does not).
	ClusterTime    bson.Timestamp
	HasClusterTime bool
	// LocalTime is hello's localTime (zero when absent).
	LocalTime time.Time
	// ChangeStreams: MongoDB 6.0+ replica set or sharded cluster reporting a
	// cluster time (cluster-wide change streams with expanded events).
	ChangeStreams bool
	// Oplog describes local.oplog.rs (not probed on mongos).
	Oplog Oplog
}

// ScanMethod is the cheaper way to read a whole collection of this server:
// an empty aggregation pipeline on FerretDB, find on MongoDB.
func (s ServerInfo) ScanMethod() ScanMethod {
	if s.FerretDB != "" {
		return ScanAggregate
	}
	return ScanFind
}

// Server names the product and version: "MongoDB 7.0.5" or "FerretDB v1.24.2".
func (s ServerInfo) Server() string {
	if s.FerretDB != "" {
		return "FerretDB " + s.FerretDB
	}
	return "MongoDB " + s.VersionString
}

// Describe names the deployment's shape for messages.
func (s ServerInfo) Describe() string {
	switch s.Topology {
	case Sharded:
		return "sharded cluster"
	case ReplicaSet:
		return "replica set " + s.SetName
	}
	return "standalone server"
}

// ErrNoChangeHistory is wrapped by the error of a source whose changes cannot
// be captured: a standalone server, a replica set without a readable oplog,
// a sharded cluster without change streams.
var ErrNoChangeHistory = errors.New("the source keeps no change history live migration can follow")

// ChangeHistory says how changes of this server (as a source) are captured:
// nil when change streams or a readable oplog are there, otherwise an error
// wrapping ErrNoChangeHistory that says what to do.
func (s ServerInfo) ChangeHistory() error {
	switch {
	case s.ChangeStreams:
		return nil
	case s.Topology == Standalone:
		return fmt.Errorf("%w: it is a standalone server; live migration needs a replica set or sharded cluster: "+
			"convert it to a one-member replica set (start it with --replSet and run rs.initiate()) and try again", ErrNoChangeHistory)
	case s.Topology == Sharded:
		return fmt.Errorf("%w: %s is a sharded cluster without change streams with expanded events: upgrade it to MongoDB 6.0 or later", ErrNoChangeHistory, s.Server())
	case !s.Oplog.Exists && s.Oplog.Err != nil:
		return fmt.Errorf("%w: replica set %s has no change streams and local.oplog.rs cannot be listed (%v): grant the user read access to the local database (the backup role)",
			ErrNoChangeHistory, s.SetName, s.Oplog.Err)
	case !s.Oplog.Exists:
		what := "start it as a replica set member with an oplog"
		if s.FerretDB != "" {
			what = "create the capped collection local.oplog.rs (FerretDB logs changes only when it exists)"
		}
		return fmt.Errorf("%w: replica set %s (%s) has no change streams and no local.oplog.rs: %s", ErrNoChangeHistory, s.SetName, s.Server(), what)
	case !s.Oplog.Readable:
		return fmt.Errorf("%w: local.oplog.rs of replica set %s cannot be read (%v): grant the user read access to the local database (the backup role)",
			ErrNoChangeHistory, s.SetName, s.Oplog.Err)
	}
	return nil
}

// Fingerprint names the deployment independently of the connection string's
// credentials and options: "rs:<setName>/<sorted members>" for a replica
// set, "hosts:<sorted seed list of uri>" otherwise.
func (s ServerInfo) Fingerprint(uri URI) (string, error) {
	if s.SetName != "" {
		return "rs:" + s.SetName + "/" + strings.Join(s.Hosts, ","), nil
	}
	cs, err := connstring.Parse(uri.Raw())
	if err != nil {
		return "", fmt.Errorf("connection string %s: %s", uri, RedactText(err.Error()))
	}
	hosts := slices.Clone(cs.Hosts)
	slices.Sort(hosts)
	return "hosts:" + strings.Join(hosts, ","), nil
}

func runRaw(ctx context.Context, c *mongo.Client, db string, cmd bson.D) (bson.Raw, error) {
	return c.Database(db).RunCommand(ctx, cmd).Raw()
}

// Probe asks a server what it is: buildInfo and hello are required; the
// feature compatibility version, shard count and oplog are filled in as far
// as the server answers (an oplog that cannot be listed or read says why in
// Oplog.Err).
func Probe(ctx context.Context, c *mongo.Client) (ServerInfo, error) {
	var s ServerInfo
	bi, err := runRaw(ctx, c, "admin", bson.D{{Key: "buildInfo", Value: 1}})
	if err != nil {
		return s, fmt.Errorf("buildInfo: %w", err)
	}
	s.VersionString, _ = bi.Lookup("version").StringValueOK()
	s.FerretDB, _ = bi.Lookup("ferretdbVersion").StringValueOK()
	s.Version, s.VersionErr = ParseVersion(s.VersionString)
	hello, err := runRaw(ctx, c, "admin", bson.D{{Key: "hello", Value: 1}})
	if err != nil {
		return s, fmt.Errorf("hello: %w", err)
	}
	s.SetName, _ = hello.Lookup("setName").StringValueOK()
	s.Me, _ = hello.Lookup("me").StringValueOK()
	s.Hosts = stringArray(hello.Lookup("hosts"))
	slices.Sort(s.Hosts)
	msg, _ := hello.Lookup("msg").StringValueOK()
	switch {
	case msg == "isdbgrid":
		s.Topology = Sharded
	case s.SetName != "":
		s.Topology = ReplicaSet
	default:
		s.Topology = Standalone
	}
	if t, i, ok := hello.Lookup("operationTime").TimestampOK(); ok {
		s.ClusterTime, s.HasClusterTime = bson.Timestamp{T: t, I: i}, true
	} else if t, i, ok := hello.Lookup("$clusterTime", "clusterTime").TimestampOK(); ok {
		s.ClusterTime, s.HasClusterTime = bson.Timestamp{T: t, I: i}, true
	}
	if lt, ok := hello.Lookup("localTime").DateTimeOK(); ok {
		s.LocalTime = time.UnixMilli(lt)
	}
	s.ChangeStreams = s.FerretDB == "" && s.VersionErr == nil && s.Version.Major >= 6 &&
		s.Topology != Standalone && s.HasClusterTime
	if s.Topology == Sharded {
		if ls, err := runRaw(ctx, c, "admin", bson.D{{Key: "listShards", Value: 1}}); err == nil {
			if arr, ok := ls.Lookup("shards").ArrayOK(); ok {
				vals, _ := arr.Values()
				s.Shards = len(vals)
			}
		}
	}
	if fcv, err := runRaw(ctx, c, "admin", bson.D{{Key: "getParameter", Value: 1}, {Key: "featureCompatibilityVersion", Value: 1}}); err == nil {
		s.FCV, _ = fcv.Lookup("featureCompatibilityVersion", "version").StringValueOK()
	}
	if s.Topology != Sharded {
		s.Oplog = probeOplog(ctx, c)
	}
	return s, nil
}

func probeOplog(ctx context.Context, c *mongo.Client) Oplog {
	var o Oplog
	// The maximum size is listCollections' options.size: collStats would
	// have FerretDB run SQLite's ANALYZE over the whole oplog first.
	specs, err := c.Database("local").ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil {
		o.Err = fmt.Errorf("list collections of local: %w", err)
		return o
	}
	for _, sp := range specs {
		if sp.Name == "oplog.rs" {
			o.Exists = true
			o.MaxBytes = Int64(sp.Options.Lookup("size"))
		}
	}
	if !o.Exists {
		return o
	}
	err = c.Database("local").RunCommand(ctx, bson.D{{Key: "find", Value: "oplog.rs"}, {Key: "limit", Value: 1},
		{Key: "projection", Value: bson.D{{Key: "ts", Value: 1}}}}).Err()
	if err != nil {
		o.Err = fmt.Errorf("read local.oplog.rs: %w", err)
		return o
	}
	o.Readable = true
	return o
}

// TotalSize is listDatabases' totalSize: the bytes the deployment stores.
func TotalSize(ctx context.Context, c *mongo.Client) (int64, error) {
	ld, err := runRaw(ctx, c, "admin", bson.D{{Key: "listDatabases", Value: 1}})
	if err != nil {
		return 0, fmt.Errorf("listDatabases: %w", err)
	}
	return Int64(ld.Lookup("totalSize")), nil
}

// Int64 reads any BSON number as int64 (0 for anything else).
func Int64(v bson.RawValue) int64 {
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

func stringArray(v bson.RawValue) []string {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := arr.Values()
	var out []string
	for _, x := range vals {
		if s, ok := x.StringValueOK(); ok {
			out = append(out, s)
		}
	}
	return out
}

// MinimumFor is the oldest supported release of v's major version, as Atlas
// live migration requires (6.0.17+, 7.0.13+); newer majors have no minimum.
func MinimumFor(v Version) (Version, error) {
	switch {
	case v.Major < 6:
		return Version{}, errors.New("MongoDB versions before 6.0 are not supported: upgrade to 6.0.17 or 7.0.13 or later")
	case v.Major == 6:
		return Version{6, 0, 17}, nil
	case v.Major == 7:
		return Version{7, 0, 13}, nil
	}
	return Version{v.Major, 0, 0}, nil
}

// CheckVersions says whether a migration from src to dst is supported: both
// at least their major's minimum (and minimum, when not ""), the same major
// version. The error lists every problem and what to do.
func CheckVersions(src, dst ServerInfo, minimum string) error {
	if err := errors.Join(src.VersionErr, dst.VersionErr); err != nil {
		return err
	}
	var problems []string
	for _, side := range []struct {
		role string
		v    Version
	}{{"source", src.Version}, {"destination", dst.Version}} {
		low, err := MinimumFor(side.v)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s MongoDB %s: %v", side.role, side.v, err))
		case side.v.Less(low):
			problems = append(problems, fmt.Sprintf("%s MongoDB %s is older than %s, the oldest supported %d.%d release: upgrade it", side.role, side.v, low, low.Major, low.Minor))
		}
		if minimum != "" {
			m, err := ParseVersion(minimum)
			if err != nil {
				problems = append(problems, fmt.Sprintf("configured minimum version: %v", err))
			} else if side.v.Less(m) {
				problems = append(problems, fmt.Sprintf("%s MongoDB %s is older than the configured minimum version %s", side.role, side.v, m))
			}
		}
	}
	if src.Version.Major != dst.Version.Major {
		problems = append(problems, fmt.Sprintf("source MongoDB %s and destination MongoDB %s differ in major version: upgrade one so they match", src.Version, dst.Version))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
