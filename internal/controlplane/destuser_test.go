package controlplane_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/controlplane/cptest"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// The destination's own user: the control plane holds it, agents never do.
const (
	destAdmin   = "dest-admin"
	destAdminPW = "Dest-Adm1n-Passw0rd"
)

// workRecorder keeps the bodies of the work an agent was handed.
type workRecorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (w *workRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/agent/v1/work") || req.Method != http.MethodGet {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	w.mu.Lock()
	w.bodies = append(w.bodies, b)
	w.mu.Unlock()
	return resp, nil
}

func (w *workRecorder) all() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Join(w.bodies, []byte("\n"))
}

// userExists asks the destination (as its admin) whether user name exists.
func userExists(t *testing.T, c *mongo.Client, name string) bool {
	t.Helper()
	ok, err := mdb.UserExists(t.Context(), c, "admin", name)
	if err != nil {
		t.Fatalf("usersInfo %s: %v", name, err)
	}
	return ok
}

// waitEvent waits for an event of type typ of migration id and returns it.
func waitEvent(t *testing.T, cp *cptest.Owner, id string, typ api.EventType, within time.Duration) api.Event {
	t.Helper()
	var found api.Event
	mongotest.WaitForErr(t, "event "+string(typ), within, func() (bool, error) {
		events, err := cp.Admin.MigrationEvents(context.Background(), cp.GroupID, id)
		for _, e := range events {
			if e.Type == typ {
				found = e
				return true, nil
			}
		}
		return false, err
	})
	return found
}

func hasEvent(t *testing.T, cp *cptest.Owner, id string, typ api.EventType) bool {
	t.Helper()
	events, err := cp.Admin.MigrationEvents(context.Background(), cp.GroupID, id)
	must(t, err)
	for _, e := range events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// TestDestinationUserLifecycle runs a migration to COMPLETE with a real
// agent into a destination that enforces authentication: the control plane
// creates livemigrate-<id>, the agent is handed only that user (never the
// destination's own password) and migrates with it, and the user is gone
// from the destination after finalize.
func TestDestinationUserLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := cptest.Start(t, controlplane.Timing{}, slog.New(slog.DiscardHandler))
	src := mongotest.StartSource(t)
	dst := mongotest.StartDestination(t, mongotest.WithAuth(destAdmin, destAdminPW))
	dc := mongotest.Client(t, dst)
	sc := mongotest.Client(t, src)
	var docs []any
	for i := range 200 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
	}
	if _, err := sc.Database("shop").Collection("orders").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	// The destination's password in the connection string, as operators paste it.
	_, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URI()})
	must(t, err)
	rec := &workRecorder{}
	cptest.RunAgent(t, agent.Options{LinkToken: cp.LinkToken, Hostname: "host1", Version: "test", ProgressInterval: 300 * time.Millisecond,
		Sources: []agent.Source{{Name: "rs0", URI: mdb.URI(src.URI())}}, HTTPClient: &http.Client{Transport: rec, Timeout: time.Minute},
		Logger: slog.New(slog.DiscardHandler)})
	cp.WaitDeployment(t, "rs0")

	m, err := cp.Admin.CreateMigration(ctx, cp.GroupID, cp.Request("host1", "rs0", "dst"))
	must(t, err)
	user := "livemigrate-" + m.ID
	created := waitEvent(t, cp, m.ID, api.EventDestinationUserCreated, 30*time.Second)
	if !strings.Contains(created.Message, user) {
		t.Errorf("created event %q does not name %s", created.Message, user)
	}
	mongotest.WaitForErr(t, "ready for cutover", 90*time.Second, func() (bool, error) {
		mp, err := cp.Admin.MigrationProgress(ctx, cp.GroupID, m.ID)
		if err == nil && mp.Migration.Status == api.MigrationFailed {
			return false, errors.New("migration failed: " + mp.ErrorMessage)
		}
		return err == nil && mp.Migration.ReadyForCutover, err
	})
	if !userExists(t, dc, user) {
		t.Fatalf("user %s does not exist on the destination during the run", user)
	}
	work := rec.all()
	if !bytes.Contains(work, []byte(`"username":"`+user+`"`)) {
		t.Errorf("the agent's start work does not carry user %s: %s", user, work)
	}
	for _, s := range []string{destAdminPW, destAdmin} {
		if bytes.Contains(work, []byte(s)) {
			t.Errorf("the agent was handed the destination's own credential %q", s)
		}
	}
	mongotest.WaitForErr(t, "cutover accepted", 60*time.Second, func() (bool, error) {
		err := cp.Admin.Cutover(ctx, cp.GroupID, m.ID)
		if client.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	mongotest.WaitForErr(t, "migration complete", 90*time.Second, func() (bool, error) {
		mp, err := cp.Admin.MigrationProgress(ctx, cp.GroupID, m.ID)
		if err == nil && mp.Migration.Status == api.MigrationFailed {
			return false, errors.New("migration failed: " + mp.ErrorMessage)
		}
		return err == nil && mp.Migration.Status == api.MigrationComplete, err
	})
	waitEvent(t, cp, m.ID, api.EventDestinationUserDropped, 30*time.Second)
	if userExists(t, dc, user) {
		t.Errorf("user %s is still on the destination after finalize", user)
	}
	if n, err := dc.Database("shop").Collection("orders").CountDocuments(ctx, bson.D{}); err != nil || n != 200 {
		t.Errorf("destination shop.orders has %d documents (%v), want 200", n, err)
	}
}

// fakeHost is a migration host driven by the test through the agent API.
type fakeHost struct {
	cp    *cptest.Owner
	agent *client.Client
}

func linkFakeHost(t *testing.T, cp *cptest.Owner) fakeHost {
	t.Helper()
	a, _, err := client.RegisterAgent(t.Context(), cp.LinkToken, "host1", "test")
	must(t, err)
	must(t, a.ReportDeployments(t.Context(), []api.Deployment{{Name: "rs0"}}))
	cp.WaitDeployment(t, "rs0")
	return fakeHost{cp: cp, agent: a}
}

// start creates a migration into cluster dest and returns it with the
// start work the host was handed (acknowledged).
func (h fakeHost) start(t *testing.T, dest string) (api.Migration, api.WorkItem) {
	t.Helper()
	ctx := t.Context()
	m, err := h.cp.Admin.CreateMigration(ctx, h.cp.GroupID, h.cp.Request("host1", "rs0", dest))
	must(t, err)
	var item api.WorkItem
	mongotest.WaitForErr(t, "start work", 30*time.Second, func() (bool, error) {
		items, err := h.agent.PollWork(ctx, time.Second)
		for _, it := range items {
			if it.Kind == api.WorkStart && it.MigrationID == m.ID {
				item = it
				return true, h.agent.AckWork(ctx, it.ID)
			}
		}
		return false, err
	})
	return m, item
}

// loginAs proves that the credentials of d work on the destination.
func loginAs(t *testing.T, d api.DestinationCluster) {
	t.Helper()
	cs, err := mdb.ParseURI(d.ConnectionString)
	must(t, err)
	c, err := mdb.Connect(t.Context(), "destination", mdb.URI(cs.WithUser(d.Username, d.Password).String()), mdb.ConnectOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("log in as the handed-out user %s: %v", d.Username, err)
	}
	c.Disconnect(context.Background())
}

// TestDestinationUserDroppedOnCancelAndExpiry: a cancelled and an expired
// migration lose their destination user too.
func TestDestinationUserDroppedOnCancelAndExpiry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := cptest.Start(t, controlplane.Timing{CutoverWindow: 2 * time.Second, ExpiryWarning: time.Second}, slog.New(slog.DiscardHandler))
	dst := mongotest.StartDestination(t, mongotest.WithAuth(destAdmin, destAdminPW))
	dc := mongotest.Client(t, dst)
	for _, name := range []string{"dst1", "dst2"} {
		_, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: name, ConnectionString: dst.URI()})
		must(t, err)
	}
	h := linkFakeHost(t, cp)

	cancelled, item := h.start(t, "dst1")
	user := "livemigrate-" + cancelled.ID
	if d := item.Spec.Destination; d.Username != user || d.Password == "" || d.Password == destAdminPW || strings.Contains(d.ConnectionString, destAdmin) {
		t.Fatalf("start work destination = %s / %q, want %s and its own password", d.Username, d.ConnectionString, user)
	}
	loginAs(t, item.Spec.Destination)
	if !userExists(t, dc, user) {
		t.Fatalf("user %s does not exist before cancel", user)
	}
	_, err := cp.Admin.CancelMigration(ctx, cp.GroupID, cancelled.ID)
	must(t, err)
	waitEvent(t, cp, cancelled.ID, api.EventDestinationUserDropped, 30*time.Second)
	if userExists(t, dc, user) {
		t.Errorf("user %s is still on the destination after cancel", user)
	}

	expired, item := h.start(t, "dst2")
	user = "livemigrate-" + expired.ID
	loginAs(t, item.Spec.Destination)
	_, err = h.agent.PostProgress(ctx, expired.ID, api.Progress{State: api.StateRunning, CanCommit: true})
	must(t, err)
	waitEvent(t, cp, expired.ID, api.EventExpired, 30*time.Second)
	waitEvent(t, cp, expired.ID, api.EventDestinationUserDropped, 30*time.Second)
	if userExists(t, dc, user) {
		t.Errorf("user %s is still on the destination after expiry", user)
	}
}

// TestDestinationUserUnreachable: a destination the control plane cannot
// reach holds the start work (with an event saying what to do) until it
// can, and a user that cannot be dropped at finalize is dropped later.
func TestDestinationUserUnreachable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := cptest.Start(t, controlplane.Timing{DestinationTimeout: time.Second}, slog.New(slog.DiscardHandler))
	dst := mongotest.StartDestination(t, mongotest.WithAuth(destAdmin, destAdminPW))
	dc := mongotest.Client(t, dst)
	proxy := mongotest.NewProxy(t, dst.Addr())
	_, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URIFor(proxy.Addr())})
	must(t, err)
	h := linkFakeHost(t, cp)

	proxy.Blackhole(0)
	req := cp.Request("host1", "rs0", "dst")
	m, err := cp.Admin.CreateMigration(ctx, cp.GroupID, req)
	must(t, err)
	warn := waitEvent(t, cp, m.ID, api.EventDestinationUserWarning, 30*time.Second)
	if !strings.Contains(warn.Message, "cannot create migration user livemigrate-"+m.ID) || !strings.Contains(warn.Message, "retries") ||
		strings.Contains(warn.Message, destAdminPW) {
		t.Errorf("warning %q does not say what failed and what to do (or leaks the password)", warn.Message)
	}
	items, err := h.agent.PollWork(ctx, time.Second)
	must(t, err)
	for _, it := range items {
		if it.Kind == api.WorkStart {
			t.Fatalf("start work handed out before the user exists: %+v", it.Spec.Destination)
		}
	}
	proxy.Pass()
	var item api.WorkItem
	mongotest.WaitForErr(t, "start work once the destination is back", 30*time.Second, func() (bool, error) {
		items, err := h.agent.PollWork(ctx, time.Second)
		for _, it := range items {
			if it.Kind == api.WorkStart {
				item = it
				return true, h.agent.AckWork(ctx, it.ID)
			}
		}
		return false, err
	})
	user := "livemigrate-" + m.ID
	if item.Spec.Destination.Username != user {
		t.Fatalf("start work destination user %q, want %s", item.Spec.Destination.Username, user)
	}
	loginAs(t, api.DestinationCluster{ConnectionString: dst.URIFor(dst.Addr()), Username: user, Password: item.Spec.Destination.Password})

	// Finalize while the destination is unreachable: retried, then dropped.
	_, err = h.agent.PostProgress(ctx, m.ID, api.Progress{State: api.StateRunning, CanCommit: true})
	must(t, err)
	must(t, cp.Admin.Cutover(ctx, cp.GroupID, m.ID))
	proxy.Blackhole(0)
	must(t, h.agent.PostReport(ctx, m.ID, api.Report{Verification: api.Verification{Status: api.VerificationPassed}}))
	mongotest.WaitForErr(t, "drop failure event", 30*time.Second, func() (bool, error) {
		events, err := cp.Admin.MigrationEvents(ctx, cp.GroupID, m.ID)
		for _, e := range events {
			if e.Type == api.EventDestinationUserWarning && strings.Contains(e.Message, "cannot drop migration user "+user) {
				return true, nil
			}
		}
		return false, err
	})
	if !userExists(t, dc, user) {
		t.Fatalf("user %s vanished while the destination was unreachable", user)
	}
	if hasEvent(t, cp, m.ID, api.EventDestinationUserDropped) {
		t.Fatal("dropped event while the destination was unreachable")
	}
	proxy.Pass()
	waitEvent(t, cp, m.ID, api.EventDestinationUserDropped, 30*time.Second)
	if userExists(t, dc, user) {
		t.Errorf("user %s is still on the destination after the retried drop", user)
	}
}

// TestDestinationUserNotManaged: a cluster registered without credentials
// gets no user (the event says so and what to do; the agent gets the
// connection string as registered), and credentials the destination
// refuses hold the start work with an event saying what is wrong.
func TestDestinationUserNotManaged(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := cptest.Start(t, controlplane.Timing{}, slog.New(slog.DiscardHandler))
	dst := mongotest.StartDestination(t) // no authentication
	_, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "open", ConnectionString: dst.URI()})
	must(t, err)
	_, err = cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "refused", ConnectionString: dst.URI(), Username: "someone", Password: "Registered-Pw"})
	must(t, err)
	h := linkFakeHost(t, cp)

	m, item := h.start(t, "open")
	warn := waitEvent(t, cp, m.ID, api.EventDestinationUserWarning, 10*time.Second)
	if !strings.Contains(warn.Message, "registered without credentials") || !strings.Contains(warn.Message, "userAdminAnyDatabase") {
		t.Errorf("warning %q does not say why and what to do", warn.Message)
	}
	if d := item.Spec.Destination; d.Username != "" || d.Password != "" || d.ConnectionString != dst.URI() {
		t.Errorf("destination of a cluster without credentials handed out as %s/%s %s", d.Username, d.Password, d.ConnectionString)
	}
	_, err = cp.Admin.CancelMigration(ctx, cp.GroupID, m.ID)
	must(t, err)

	m, err = cp.Admin.CreateMigration(ctx, cp.GroupID, cp.Request("host1", "rs0", "refused"))
	must(t, err)
	warn = waitEvent(t, cp, m.ID, api.EventDestinationUserWarning, 30*time.Second)
	if !strings.Contains(warn.Message, "authentication failed") || !strings.Contains(warn.Message, "check the user name, password") ||
		strings.Contains(warn.Message, "Registered-Pw") {
		t.Errorf("warning %q does not say what is wrong (or leaks the password)", warn.Message)
	}
	items, err := h.agent.PollWork(ctx, 0)
	must(t, err)
	for _, it := range items {
		if it.Kind == api.WorkStart {
			t.Errorf("start work handed out with credentials the destination refuses: %+v", it.Spec.Destination)
		}
	}
}

// TestDestinationUserOfValidation: a validation's work carries a user of
// its own, dropped when the result is in; while the destination cannot be
// reached the validation stays PENDING and its errorMessage says why.
func TestDestinationUserOfValidation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := cptest.Start(t, controlplane.Timing{DestinationTimeout: time.Second}, slog.New(slog.DiscardHandler))
	dst := mongotest.StartDestination(t, mongotest.WithAuth(destAdmin, destAdminPW))
	dc := mongotest.Client(t, dst)
	proxy := mongotest.NewProxy(t, dst.Addr())
	_, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URIFor(proxy.Addr())})
	must(t, err)
	h := linkFakeHost(t, cp)

	proxy.Blackhole(0)
	v, err := cp.Admin.CreateValidation(ctx, cp.GroupID, cp.Request("host1", "rs0", "dst"))
	must(t, err)
	user := "livemigrate-" + v.ID
	mongotest.WaitForErr(t, "validation says why it waits", 30*time.Second, func() (bool, error) {
		got, err := cp.Admin.Validation(ctx, cp.GroupID, v.ID)
		return got.Status == api.ValidationPending && strings.Contains(got.ErrorMessage, "cannot create validation user "+user), err
	})
	if items, err := h.agent.PollWork(ctx, 0); err != nil || len(items) != 0 {
		t.Fatalf("work while the validation user cannot be created: %+v %v", items, err)
	}
	proxy.Pass()
	var item api.WorkItem
	mongotest.WaitForErr(t, "validate work", 30*time.Second, func() (bool, error) {
		items, err := h.agent.PollWork(ctx, time.Second)
		if len(items) == 1 {
			item = items[0]
			return true, h.agent.AckWork(ctx, item.ID)
		}
		return false, err
	})
	if d := item.Spec.Destination; item.Kind != api.WorkValidate || d.Username != user || d.Password == destAdminPW || strings.Contains(d.ConnectionString, destAdmin) {
		t.Fatalf("validate work %s with destination user %q, want %s", item.Kind, d.Username, user)
	}
	if got, err := cp.Admin.Validation(ctx, cp.GroupID, v.ID); err != nil || got.ErrorMessage != "" {
		t.Errorf("validation once its user exists: %+v %v, want no errorMessage", got, err)
	}
	loginAs(t, api.DestinationCluster{ConnectionString: dst.URI(), Username: user, Password: item.Spec.Destination.Password})
	if !userExists(t, dc, user) {
		t.Fatalf("user %s does not exist during the validation", user)
	}
	must(t, h.agent.PostValidationResult(ctx, v.ID, api.ValidationResult{Status: api.ValidationSuccess}))
	mongotest.WaitFor(t, "validation user dropped", 30*time.Second, func() bool { return !userExists(t, dc, user) })
	checks, err := cp.Admin.ValidationChecks(ctx, cp.GroupID, v.ID)
	must(t, err)
	if c := checks.Checks[len(checks.Checks)-1]; c.Name != "destination-user" || c.Status != api.CheckPassed || !strings.Contains(c.Message, user) {
		t.Errorf("last check = %+v, want destination-user PASSED naming %s", c, user)
	}

	// A cluster without credentials: the validation says what that means.
	_, err = cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "open", ConnectionString: mongotest.StartDestination(t).URI()})
	must(t, err)
	v, err = cp.Admin.CreateValidation(ctx, cp.GroupID, cp.Request("host1", "rs0", "open"))
	must(t, err)
	checks, err = cp.Admin.ValidationChecks(ctx, cp.GroupID, v.ID)
	must(t, err)
	if len(checks.Checks) != 1 || checks.Checks[0].Status != api.CheckWarning || !strings.Contains(checks.Checks[0].Message, "registered without credentials") {
		t.Errorf("checks of a validation into a cluster without credentials = %+v, want the destination-user warning", checks.Checks)
	}
}
