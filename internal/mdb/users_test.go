package mdb_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestUsersOnAuthServer: on a server with authentication (FerretDB with
// --test-enable-new-auth) createUser is idempotent and the new user can log
// in; roles are refused as not supported there (FerretDB has no
// authorization); dropUser is idempotent.
func TestUsersOnAuthServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mongotest.StartDestination(t, mongotest.WithAuth("root", "R00t-pw"))
	c := mongotest.Client(t, s)

	err := mdb.CreateUser(ctx, c, mdb.UserDB, "lm-1", "pw-one", mdb.MigrationRoles)
	if !errors.Is(err, mdb.ErrRolesNotSupported) {
		t.Fatalf("createUser with roles on FerretDB: %v, want ErrRolesNotSupported", err)
	}
	if ok, err := mdb.UserExists(ctx, c, mdb.UserDB, "lm-1"); err != nil || ok {
		t.Fatalf("usersInfo after a refused create: %v %v, want no user", ok, err)
	}
	if err := mdb.CreateUser(ctx, c, mdb.UserDB, "lm-1", "pw-one", nil); err != nil {
		t.Fatal(err)
	}
	// Again, with another password: the user converges to it.
	if err := mdb.CreateUser(ctx, c, mdb.UserDB, "lm-1", "pw-two", nil); err != nil {
		t.Fatalf("second createUser: %v", err)
	}
	if ok, err := mdb.UserExists(ctx, c, mdb.UserDB, "lm-1"); err != nil || !ok {
		t.Fatalf("usersInfo: %v %v, want the user", ok, err)
	}
	cs, err := mdb.ParseURI(s.URI())
	if err != nil {
		t.Fatal(err)
	}
	login := func(pw string) error {
		uc, err := mdb.Connect(ctx, "as lm-1", mdb.URI(cs.ForUser(mdb.UserDB).WithUser("lm-1", pw).String()), mdb.ConnectOptions{Timeout: 5 * time.Second})
		if err == nil {
			err = uc.Database("x").RunCommand(ctx, bson.D{{Key: "listCollections", Value: 1}}).Err()
			uc.Disconnect(context.Background())
		}
		return err
	}
	if err := login("pw-two"); err != nil {
		t.Errorf("log in with the second password: %v", err)
	}
	if err := login("pw-one"); err == nil {
		t.Error("the first password still logs in")
	}
	if ok, err := mdb.UserExists(ctx, c, mdb.UserDB, "lm-other"); err != nil || ok {
		t.Errorf("usersInfo of a missing user: %v %v", ok, err)
	}
	for range 2 {
		if err := mdb.DropUser(ctx, c, mdb.UserDB, "lm-1"); err != nil {
			t.Fatalf("dropUser: %v", err)
		}
	}
	if ok, err := mdb.UserExists(ctx, c, mdb.UserDB, "lm-1"); err != nil || ok {
		t.Errorf("usersInfo after drop: %v %v, want no user", ok, err)
	}
	if err := login("pw-two"); !mdb.IsAuthFailed(err) {
		t.Errorf("log in after drop: %v, want authentication failed", err)
	}
}

// TestUsersWithoutAuth: a server without authentication has no user
// commands; every one says so with ErrNoUserManagement.
func TestUsersWithoutAuth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := mongotest.Client(t, mongotest.StartDestination(t))
	if err := mdb.CreateUser(ctx, c, mdb.UserDB, "lm-1", "pw", nil); !errors.Is(err, mdb.ErrNoUserManagement) {
		t.Errorf("createUser: %v", err)
	}
	if err := mdb.DropUser(ctx, c, mdb.UserDB, "lm-1"); !errors.Is(err, mdb.ErrNoUserManagement) {
		t.Errorf("dropUser: %v", err)
	}
	if _, err := mdb.UserExists(ctx, c, mdb.UserDB, "lm-1"); !errors.Is(err, mdb.ErrNoUserManagement) {
		t.Errorf("usersInfo: %v", err)
	}
}

func TestForUser(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"mongodb://admin:pw@h1:27017,h2/?replicaSet=rs&authSource=other", "mongodb://h1:27017,h2/?replicaSet=rs&authSource=admin"},
		{"mongodb://h1/", "mongodb://h1/?authSource=admin"},
		{"mongodb://h1/db?authMechanism=SCRAM-SHA-256&tls=true", "mongodb://h1/db?authMechanism=SCRAM-SHA-256&tls=true&authSource=admin"},
		{"mongodb://CN=x@h1/?authMechanism=MONGODB-X509&tls=true", "mongodb://h1/?tls=true&authSource=admin"},
		{"mongodb://AKID:s@h1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok", "mongodb://h1/?authSource=admin"},
		{"mongodb+srv://u:p@c.example.com/?AuthSource=x&retryWrites=true", "mongodb+srv://c.example.com/?retryWrites=true&authSource=admin"},
	} {
		cs, err := mdb.ParseURIUnchecked(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := cs.ForUser("admin").String(); got != c.want {
			t.Errorf("ForUser(%s) = %s, want %s", mdb.Redact(c.in), got, c.want)
		}
	}
	cs, _ := mdb.ParseURIUnchecked("mongodb://CN=x@h1/?authMechanism=MONGODB-X509")
	if got := cs.WithUser("", "").String(); got != cs.String() || !cs.HasUser {
		t.Errorf("WithUser with no user dropped the connection string's own: %s", got)
	}
	if got := cs.WithUser("u@x", "p:w").String(); got != "mongodb://"+url.QueryEscape("u@x")+":"+url.QueryEscape("p:w")+"@h1/?authMechanism=MONGODB-X509" {
		t.Errorf("WithUser = %s", mdb.Redact(got))
	}
}
