package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
)

// Names of the validation checks, in the order they run.
const (
	CheckControlPlane            = "control-plane-connectivity"
	CheckSourceTLS               = "source-tls"
	CheckSourceConnectivity      = "source-connectivity"
	CheckSourceAuthentication    = "source-authentication"
	CheckDestinationConnectivity = "destination-connectivity"
	CheckSourceTopology          = "source-topology"
	CheckVersions                = "mongodb-versions"
	CheckDistinctDeployments     = "source-destination-distinct"
	CheckSourceRoles             = "source-user-roles"
	CheckSourceMechanisms        = "source-auth-mechanisms"
	CheckChangeCapture           = "change-capture"
	CheckDatabaseStatistics      = "database-statistics"
	CheckDestinationDisk         = "destination-disk"
	CheckOtherMigration          = "destination-other-migration"
	CheckDestinationNamespaces   = "destination-namespaces"
)

// ValidationOptions adjusts Validate.
type ValidationOptions struct {
	// Hostname is the migration host's name, used in messages.
	Hostname string
	// MinVersion, when set (e.g. "8.0.0"), is a minimum MongoDB version both
	// deployments must have, on top of Atlas's 6.0.17+/7.0.13+.
	MinVersion string
	// MetadataDB is the engine's metadata database on the destination
	// (default catalog.DefaultMetadataDB).
	MetadataDB string
	// Timeout bounds each connection attempt (default 10s).
	Timeout time.Duration
}

// checks accumulates the outcome of each check.
type checks struct{ list []api.ValidationCheck }

func (c *checks) add(name string, st api.CheckStatus, format string, args ...any) {
	c.list = append(c.list, api.ValidationCheck{Name: name, Status: st, Message: fmt.Sprintf(format, args...)})
}
func (c *checks) pass(name, format string, args ...any) {
	c.add(name, api.CheckPassed, format, args...)
}
func (c *checks) fail(name, format string, args ...any) {
	c.add(name, api.CheckFailed, format, args...)
}
func (c *checks) warn(name, format string, args ...any) {
	c.add(name, api.CheckWarning, format, args...)
}

// unknown records a check that cannot be made, saying why.
func (c *checks) unknown(name, format string, args ...any) {
	c.add(name, api.CheckSkipped, "could not be checked: "+format, args...)
}

func (c *checks) result() api.ValidationResult {
	res := api.ValidationResult{Status: api.ValidationSuccess, Checks: c.list}
	var failed []string
	for _, ch := range c.list {
		if ch.Status == api.CheckFailed {
			failed = append(failed, ch.Message)
		}
	}
	if len(failed) > 0 {
		res.Status = api.ValidationFailed
		res.ErrorMessage = strings.Join(failed, "; ")
	}
	return res
}

// Validate runs every pre-migration check of spec that can be made against
// source src and the spec's destination, each with its own message. It
// never returns an error: what cannot be checked is reported as SKIPPED
// with the reason.
func Validate(ctx context.Context, spec api.MigrationSpec, src Source, o ValidationOptions) api.ValidationResult {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MetadataDB == "" {
		o.MetadataDB = catalog.DefaultMetadataDB
	}
	host := o.Hostname
	if host == "" {
		host = "this migration host"
	}
	var c checks
	c.pass(CheckControlPlane, "migration host %s reaches the control plane", host)
	req := spec.Request

	// Source: TLS file, connection, authentication.
	var srcClient *mongo.Client
	srcURI, err := src.connectionFor(req.Source)
	if err != nil {
		c.fail(CheckSourceConnectivity, "%v", err)
	} else {
		srcClient = connectChecked(ctx, &c, "source "+src.Name, srcURI, host, o.Timeout,
			CheckSourceTLS, CheckSourceConnectivity, CheckSourceAuthentication)
	}
	if srcClient != nil {
		defer srcClient.Disconnect(context.WithoutCancel(ctx))
	}

	// Destination.
	var dstClient *mongo.Client
	dstURI, err := destinationURI(spec.Destination)
	if err != nil {
		c.fail(CheckDestinationConnectivity, "%v", err)
	} else {
		dstClient = connectChecked(ctx, &c, "destination "+spec.Destination.Name, dstURI, host, o.Timeout,
			CheckDestinationConnectivity, CheckDestinationConnectivity, CheckDestinationConnectivity)
	}
	if dstClient != nil {
		defer dstClient.Disconnect(context.WithoutCancel(ctx))
	}

	var srcInfo, dstInfo *mdb.ServerInfo
	var pf *engine.PreflightReport
	pfErr := errors.New("source and destination must both be connected")
	bothConnected := srcClient != nil && dstClient != nil
	if bothConnected {
		// The engine's own start checks, from the same code.
		pf, pfErr = engine.Preflight(ctx, srcClient, dstClient, engine.Options{
			Source: srcURI, Destination: dstURI, DropDestinationData: req.DropDestinationData,
			MetadataDB: o.MetadataDB, MinVersion: o.MinVersion,
		})
		if pf != nil {
			srcInfo, dstInfo = &pf.Source, &pf.Destination
		}
	}
	if srcClient != nil && srcInfo == nil {
		if si, err := mdb.Probe(ctx, srcClient); err != nil {
			c.fail(CheckSourceTopology, "source %s: %v", src.Name, err)
		} else {
			srcInfo = &si
		}
	}
	if srcInfo != nil {
		checkTopology(&c, src.Name, *srcInfo)
	} else if srcClient == nil {
		c.unknown(CheckSourceTopology, "the source is not connected")
	}
	if dstClient != nil && dstInfo == nil {
		if si, err := mdb.Probe(ctx, dstClient); err == nil {
			dstInfo = &si
		} else {
			c.fail(CheckVersions, "destination %s: %v", spec.Destination.Name, err)
		}
	}
	checkVersions(&c, srcInfo, dstInfo, o.MinVersion)
	checkDistinct(&c, pf, pfErr, bothConnected)

	if srcClient != nil {
		checkUser(ctx, &c, srcClient, srcInfo)
	} else {
		c.unknown(CheckSourceRoles, "the source is not connected")
		c.unknown(CheckSourceMechanisms, "the source is not connected")
	}
	checkChangeCapture(&c, srcInfo)

	storage := int64(-1)
	if srcClient != nil {
		storage = checkDBStats(ctx, &c, srcClient)
	} else {
		c.unknown(CheckDatabaseStatistics, "the source is not connected")
	}
	if dstClient != nil {
		checkDisk(ctx, &c, dstClient, storage)
	} else {
		c.unknown(CheckDestinationDisk, "the destination is not connected")
	}
	checkDestinationState(&c, pf, pfErr, o.MetadataDB)
	return c.result()
}

// connectChecked connects and records the TLS, connectivity and
// authentication checks; it returns nil when the deployment is unusable.
func connectChecked(ctx context.Context, c *checks, role string, uri mdb.URI, host string, timeout time.Duration, tlsCheck, connCheck, authCheck string) *mongo.Client {
	if tlsEnabled(uri) {
		if ca := caFile(uri); ca != "" {
			if _, err := os.Stat(ca); err != nil {
				reason := "cannot be read"
				if errors.Is(err, os.ErrNotExist) {
					reason = "does not exist"
				}
				c.fail(tlsCheck, "%s: the TLS CA file %s %s on migration host %s: copy the CA certificate (PEM) there or correct the CA certificate path", role, ca, reason, host)
				if connCheck != tlsCheck {
					c.unknown(connCheck, "%s: TLS is not configured correctly", role)
				}
				return nil
			}
		}
	}
	cl, err := mdb.Connect(ctx, role, uri, mdb.ConnectOptions{Timeout: timeout})
	if err == nil {
		if tlsEnabled(uri) && tlsCheck != connCheck {
			c.pass(tlsCheck, "%s: TLS handshake succeeded", role)
		}
		c.pass(connCheck, "migration host %s reaches %s", host, role)
		if authCheck != connCheck {
			c.pass(authCheck, "%s: authenticated", role)
		}
		return cl
	}
	msg := err.Error()
	switch {
	case mdb.IsAuthFailed(err) || strings.Contains(msg, "authentication failed"):
		if authCheck != connCheck {
			c.pass(connCheck, "migration host %s reaches %s", host, role)
		}
		c.fail(authCheck, "%s", msg)
	case tlsCheck != connCheck && (strings.Contains(msg, "TLS") || strings.Contains(msg, "certificate") || strings.Contains(msg, "x509")):
		c.fail(tlsCheck, "%s", msg)
	default:
		c.fail(connCheck, "migration host %s cannot reach %s", host, msg)
	}
	return nil
}

func checkTopology(c *checks, name string, si mdb.ServerInfo) {
	switch si.Topology {
	case mdb.Sharded:
		c.pass(CheckSourceTopology, "source %s is a sharded cluster with %d shards", name, si.Shards)
	case mdb.ReplicaSet:
		c.pass(CheckSourceTopology, "source %s is replica set %s", name, si.SetName)
	default:
		c.fail(CheckSourceTopology, "source %s is a standalone server: live migration needs the change history of a replica set; convert it to a replica set first (a one-member replica set is enough)", name)
	}
}

// checkVersions applies the engine's version rule (mdb.CheckVersions).
func checkVersions(c *checks, src, dst *mdb.ServerInfo, minimum string) {
	if src == nil || dst == nil {
		c.unknown(CheckVersions, "source and destination must both be connected")
		return
	}
	if err := mdb.CheckVersions(*src, *dst, minimum); err != nil {
		c.fail(CheckVersions, "%v", err)
		return
	}
	c.pass(CheckVersions, "source MongoDB %s and destination MongoDB %s are supported and match in major version", src.Version, dst.Version)
}

// checkDistinct reports the engine's proof that source and destination are
// different deployments.
func checkDistinct(c *checks, pf *engine.PreflightReport, pfErr error, bothConnected bool) {
	switch {
	case pf == nil && bothConnected:
		// The engine could not make its start checks: it would not start either.
		c.fail(CheckDistinctDeployments, "the engine's start checks cannot be made: %v", pfErr)
	case pf == nil:
		c.unknown(CheckDistinctDeployments, "%v", pfErr)
	case pf.Distinct != nil:
		c.fail(CheckDistinctDeployments, "%v", pf.Distinct)
	default:
		c.pass(CheckDistinctDeployments, "source and destination are different deployments (a probe document written to the destination is not visible on the source)")
	}
}

// checkDestinationState reports what the engine's start checks found on the
// destination: another migration's metadata and existing namespaces.
func checkDestinationState(c *checks, pf *engine.PreflightReport, pfErr error, metadataDB string) {
	switch {
	case pf == nil:
		c.unknown(CheckOtherMigration, "%v", pfErr)
		c.unknown(CheckDestinationNamespaces, "%v", pfErr)
		return
	case pf.Distinct != nil:
		c.unknown(CheckOtherMigration, "the destination is the source")
		c.unknown(CheckDestinationNamespaces, "the destination is the source")
		return
	}
	switch {
	case pf.Metadata != nil:
		c.fail(CheckOtherMigration, "the destination already holds the state of a migration (database %s): let that migration finish or cancel it, or ask to drop destination data to start over (%v)", metadataDB, pf.Metadata)
	case pf.ClearMetadata != "":
		c.warn(CheckOtherMigration, "the destination holds %s in database %s: it is dropped when the migration starts", pf.ClearMetadata, metadataDB)
	case pf.Resume != nil:
		c.warn(CheckOtherMigration, "the destination holds an unfinished run from the same source (database %s): the migration resumes it", metadataDB)
	default:
		c.pass(CheckOtherMigration, "no other migration targets the destination")
	}
	switch {
	case pf.Resume != nil:
		c.pass(CheckDestinationNamespaces, "the migration resumes the run on the destination")
	case pf.Namespaces != nil:
		c.fail(CheckDestinationNamespaces, "%d of the source's namespaces already exist on the destination: %s; drop them there or ask to drop destination data", len(pf.Existing), nsList(pf.Existing))
	case len(pf.Existing) > 0:
		c.warn(CheckDestinationNamespaces, "%d namespaces exist on the destination and will be dropped (dropDestinationData): %s", len(pf.Existing), nsList(pf.Existing))
	default:
		c.pass(CheckDestinationNamespaces, "none of the source's %d namespaces exists on the destination", len(pf.Collections))
	}
}

// checkUser checks the source user's roles and SCRAM mechanisms.
func checkUser(ctx context.Context, c *checks, cl *mongo.Client, si *mdb.ServerInfo) {
	cs, err := runCommand(ctx, cl, "admin", bson.D{{Key: "connectionStatus", Value: 1}})
	if err != nil {
		c.unknown(CheckSourceRoles, "connectionStatus failed: %v", err)
		c.unknown(CheckSourceMechanisms, "connectionStatus failed: %v", err)
		return
	}
	users, _ := cs.Lookup("authInfo", "authenticatedUsers").ArrayOK()
	vals, _ := users.Values()
	if len(vals) == 0 {
		c.warn(CheckSourceRoles, "the agent connects to the source without a user (the source does not enforce authentication): roles not checked")
		c.warn(CheckSourceMechanisms, "the agent connects to the source without a user: SCRAM mechanisms not checked")
		return
	}
	doc, _ := vals[0].DocumentOK()
	user, _ := doc.Lookup("user").StringValueOK()
	db, _ := doc.Lookup("db").StringValueOK()
	ui, err := runCommand(ctx, cl, db, bson.D{{Key: "usersInfo", Value: bson.D{{Key: "user", Value: user}, {Key: "db", Value: db}}}})
	if err != nil {
		c.unknown(CheckSourceRoles, "usersInfo for %s.%s failed: %v", db, user, err)
		c.unknown(CheckSourceMechanisms, "usersInfo for %s.%s failed: %v", db, user, err)
		return
	}
	arr, _ := ui.Lookup("users").ArrayOK()
	uvals, _ := arr.Values()
	if len(uvals) == 0 {
		c.unknown(CheckSourceRoles, "usersInfo returns nothing for %s.%s", db, user)
		c.unknown(CheckSourceMechanisms, "usersInfo returns nothing for %s.%s", db, user)
		return
	}
	u, _ := uvals[0].DocumentOK()
	roles := roleNames(u.Lookup("roles"))
	switch {
	case si != nil && si.FerretDB != "" && len(roles) == 0:
		c.unknown(CheckSourceRoles, "the source (FerretDB %s) has no role-based authorization; on MongoDB user %s needs backup and readAnyDatabase", si.FerretDB, user)
	default:
		need := []string{"backup", "readAnyDatabase"}
		if si != nil && si.Topology == mdb.Sharded {
			need = append(need, "clusterMonitor")
		}
		var missing []string
		for _, r := range need {
			if !slices.Contains(roles, r) && !slices.Contains(roles, "root") && !slices.Contains(roles, "__system") {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			c.fail(CheckSourceRoles, "source user %s lacks the role(s) %s on admin (has %v): grant them with db.grantRolesToUser", user, strings.Join(missing, ", "), roles)
		} else {
			c.pass(CheckSourceRoles, "source user %s has %s", user, strings.Join(need, " + "))
		}
	}
	mechs := stringArray(u.Lookup("mechanisms"))
	if mechs == nil {
		c.unknown(CheckSourceMechanisms, "usersInfo does not list the mechanisms of user %s", user)
		return
	}
	var missing []string
	for _, m := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256"} {
		if !slices.Contains(mechs, m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		c.fail(CheckSourceMechanisms, "source user %s cannot authenticate with %s (has %v): update the user with both SCRAM-SHA-1 and SCRAM-SHA-256", user, strings.Join(missing, ", "), mechs)
		return
	}
	c.pass(CheckSourceMechanisms, "source user %s authenticates with SCRAM-SHA-1 and SCRAM-SHA-256", user)
}

// roleNames reads usersInfo roles ([{role, db}]) as names of roles on admin.
func roleNames(v bson.RawValue) []string {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := arr.Values()
	var out []string
	for _, r := range vals {
		d, ok := r.DocumentOK()
		if !ok {
			continue
		}
		name, _ := d.Lookup("role").StringValueOK()
		if db, _ := d.Lookup("db").StringValueOK(); db == "admin" || db == "" {
			out = append(out, name)
		}
	}
	return out
}

func stringArray(v bson.RawValue) []string {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := arr.Values()
	out := []string{}
	for _, x := range vals {
		if s, ok := x.StringValueOK(); ok {
			out = append(out, s)
		}
	}
	return out
}

func checkChangeCapture(c *checks, si *mdb.ServerInfo) {
	switch {
	case si == nil:
		c.unknown(CheckChangeCapture, "the source is not connected")
	case si.ChangeHistory() != nil:
		c.fail(CheckChangeCapture, "%v", si.ChangeHistory())
	case si.ChangeStreams:
		c.pass(CheckChangeCapture, "changes are read with change streams")
	default:
		c.pass(CheckChangeCapture, "changes are read from the source's oplog (local.oplog.rs, %d MB)", si.Oplog.MaxBytes>>20)
	}
}

// checkDBStats runs dbStats on every user database of the source and returns
// the sum of their storage sizes (-1 when unknown).
func checkDBStats(ctx context.Context, c *checks, cl *mongo.Client) int64 {
	dbs, err := cl.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		c.fail(CheckDatabaseStatistics, "list the source's databases: %v", err)
		return -1
	}
	var storage, data int64
	n := 0
	for _, db := range dbs {
		if migration.IsSystemDatabase(db) {
			continue
		}
		st, err := runCommand(ctx, cl, db, bson.D{{Key: "dbStats", Value: 1}})
		if err != nil {
			c.fail(CheckDatabaseStatistics, "database statistics of %s cannot be collected: %v", db, err)
			return -1
		}
		storage += mdb.Int64(st.Lookup("storageSize"))
		data += mdb.Int64(st.Lookup("dataSize"))
		n++
	}
	c.pass(CheckDatabaseStatistics, "statistics of %d source databases collected: %s data, %s storage", n, migration.FormatBytes(data), migration.FormatBytes(storage))
	return storage
}

func checkDisk(ctx context.Context, c *checks, dst *mongo.Client, need int64) {
	st, err := runCommand(ctx, dst, "admin", bson.D{{Key: "dbStats", Value: 1}})
	if err != nil {
		c.unknown(CheckDestinationDisk, "dbStats on the destination failed: %v", err)
		return
	}
	total, used := mdb.Int64(st.Lookup("fsTotalSize")), mdb.Int64(st.Lookup("fsUsedSize"))
	switch {
	case total <= 0:
		if need >= 0 {
			c.unknown(CheckDestinationDisk, "the destination does not report its disk size (no fsTotalSize in dbStats); make sure it has at least %s free (the source's storage size)", migration.FormatBytes(need))
		} else {
			c.unknown(CheckDestinationDisk, "the destination does not report its disk size and the source's storage size is unknown")
		}
	case need < 0:
		c.unknown(CheckDestinationDisk, "the source's storage size is unknown; the destination has %s free", migration.FormatBytes(total-used))
	case total-used < need:
		c.fail(CheckDestinationDisk, "the destination has %s free but the source's data takes %s: add disk space to the destination", migration.FormatBytes(total-used), migration.FormatBytes(need))
	default:
		c.pass(CheckDestinationDisk, "the destination has %s free for the source's %s", migration.FormatBytes(total-used), migration.FormatBytes(need))
	}
}

func nsList(nss []migration.Namespace) string {
	const show = 5
	var parts []string
	for i, ns := range nss {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(nss)-show))
			break
		}
		parts = append(parts, ns.String())
	}
	return strings.Join(parts, ", ")
}

func runCommand(ctx context.Context, c *mongo.Client, db string, cmd bson.D) (bson.Raw, error) {
	return c.Database(db).RunCommand(ctx, cmd).Raw()
}
