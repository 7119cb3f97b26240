package mdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// User-management error codes.
const (
	codeUserNotFound      = 11
	codeUserAlreadyExists = 51003
)

// Role is a built-in or custom role granted on a database.
type Role struct {
	Role string `bson:"role"`
	DB   string `bson:"db"`
}

// UserDB is the database migration-scoped users are created in (their
// authSource).
const UserDB = "admin"

// MigrationRoles are the roles of a migration-scoped destination user on
// MongoDB: the least a sync engine run needs with built-in roles.
//
//   - readWriteAnyDatabase: the migrated databases are every user database
//     of the source, not known before the run and growing with the DDL it
//     replays (create, rename across databases), and the engine's metadata
//     database (__livemigrate) is one of them: read, insert, update, remove,
//     createCollection, dropCollection, createIndex, dropIndex,
//     renameCollection, listDatabases and listCollections on all of them.
//   - dbAdminAnyDatabase: dropDatabase (dropDestinationData, a replayed
//     dropDatabase, the metadata database at the end), collMod (the index
//     options restored at commit) and $collStats storage statistics.
//   - clusterMonitor: what the destination probe reads besides hello and
//     buildInfo: getParameter featureCompatibilityVersion, serverStatus and
//     listShards. It is read-only.
//
// Not granted: user and role administration, cluster management (shutdown,
// replSetReconfig, sharding), and the local and config databases.
var MigrationRoles = []Role{
	{Role: "readWriteAnyDatabase", DB: "admin"},
	{Role: "dbAdminAnyDatabase", DB: "admin"},
	{Role: "clusterMonitor", DB: "admin"},
}

// ErrNoUserManagement is wrapped by the user commands' errors on a server
// that has no user management (createUser, dropUser, usersInfo): FerretDB
// without --test-enable-new-auth, or any server without authentication.
var ErrNoUserManagement = errors.New("the server has no user management (createUser is not a command there): it runs without authentication")

// ErrRolesNotSupported is wrapped by CreateUser's error on a server that
// creates users but grants no roles (FerretDB, which has no authorization:
// its users may run every command). CreateUser with no roles works there.
var ErrRolesNotSupported = errors.New("the server does not grant roles to users")

// CreateUser creates user name in db with password and roles. It is
// idempotent: an existing user of that name is given password and roles
// (updateUser), so a create retried after a lost reply converges.
func CreateUser(ctx context.Context, c *mongo.Client, db, name, password string, roles []Role) error {
	if roles == nil {
		roles = []Role{}
	}
	err := c.Database(db).RunCommand(ctx, bson.D{{Key: "createUser", Value: name}, {Key: "pwd", Value: password}, {Key: "roles", Value: roles}}).Err()
	if hasCode(err, codeUserAlreadyExists) {
		err = c.Database(db).RunCommand(ctx, bson.D{{Key: "updateUser", Value: name}, {Key: "pwd", Value: password}, {Key: "roles", Value: roles}}).Err()
	}
	return userError("createUser", db, name, err)
}

// DropUser drops user name of db. A user that is not there is not an error
// (the drop is idempotent).
func DropUser(ctx context.Context, c *mongo.Client, db, name string) error {
	err := c.Database(db).RunCommand(ctx, bson.D{{Key: "dropUser", Value: name}}).Err()
	if hasCode(err, codeUserNotFound) {
		return nil
	}
	return userError("dropUser", db, name, err)
}

// UserExists reports whether user name of db exists (usersInfo).
func UserExists(ctx context.Context, c *mongo.Client, db, name string) (bool, error) {
	var out struct {
		Users []struct {
			User string `bson:"user"`
			DB   string `bson:"db"`
		} `bson:"users"`
	}
	err := c.Database(db).RunCommand(ctx, bson.D{{Key: "usersInfo", Value: bson.D{{Key: "user", Value: name}, {Key: "db", Value: db}}}}).Decode(&out)
	if err != nil {
		return false, userError("usersInfo", db, name, err)
	}
	for _, u := range out.Users {
		if u.User == name && u.DB == db {
			return true, nil
		}
	}
	return false, nil
}

func userError(cmd, db, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case IsCommandNotFound(err):
		return fmt.Errorf("%s %s@%s: %w", cmd, name, db, ErrNoUserManagement)
	case cmd == "createUser" && hasCode(err, codeNotImplemented):
		return fmt.Errorf("%s %s@%s: %w: %w", cmd, name, db, ErrRolesNotSupported, err)
	case IsUnauthorized(err):
		return fmt.Errorf("%s %s@%s: the connecting user may not manage users; grant it userAdminAnyDatabase (or root): %w", cmd, name, db, err)
	}
	return fmt.Errorf("%s %s@%s: %w", cmd, name, db, err)
}

// ForUser returns a copy of c for a SCRAM user of database db handed out
// separately: no user information, authSource db, and no authMechanism
// other than SCRAM-SHA-1 or SCRAM-SHA-256 (with its properties), since the
// user created has a password whatever the connection string's own user
// authenticates with (X.509, Kerberos, AWS).
func (c *ConnString) ForUser(db string) *ConnString {
	d := c.WithoutUserInfo()
	keepMechanism := false
	for _, o := range d.Options {
		if strings.EqualFold(o.Key, "authMechanism") {
			v, _ := url.QueryUnescape(o.Value)
			keepMechanism = v == "SCRAM-SHA-1" || v == "SCRAM-SHA-256"
		}
	}
	d.Options = slices.DeleteFunc(d.Options, func(o Option) bool {
		switch strings.ToLower(o.Key) {
		case "authsource":
			return true
		case "authmechanism":
			return !keepMechanism
		case authMechanismProperties:
			return true
		}
		return false
	})
	d.Options = append(d.Options, Option{Key: "authSource", Value: url.QueryEscape(db)})
	return d
}

// WithUser returns a copy of c authenticating as user with password; with
// no user it is c's own user information (if any) that stays.
func (c *ConnString) WithUser(user, password string) *ConnString {
	if user == "" {
		d := *c
		d.Options = slices.Clone(c.Options)
		return &d
	}
	d := c.WithoutUserInfo()
	d.Username, d.HasUser = user, true
	d.Password, d.HasPassword = password, password != ""
	return d
}
