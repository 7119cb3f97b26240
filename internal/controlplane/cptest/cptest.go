// Package cptest drives a control plane from tests as its owner would: the
// organization, project and link token, waiting for an agent's deployments,
// migration requests and validations. Start runs a control plane in the
// test process; a test that runs the livemigrate binary calls Attach.
package cptest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// Owner is the owner's view of one control plane.
type Owner struct {
	URL   string
	Admin *client.Client
	// OrgID and GroupID are the first organization and project; GroupID
	// is where migrations are created.
	OrgID, GroupID string
	// SourceGroupID is the project of the last deployment WaitDeployment found.
	SourceGroupID string
	// LinkToken links agents to the organization.
	LinkToken string
}

// Start runs an in-process control plane with a fresh database until the
// test ends and returns its owner.
func Start(t testing.TB, timing controlplane.Timing, logger *slog.Logger) *Owner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, controlplane.KeySize)
	rand.Read(key)
	url := "http://" + ln.Addr().String()
	srv, err := controlplane.New(ctx, controlplane.Options{DataPath: filepath.Join(t.TempDir(), "cp.db"), Key: key, ExternalURL: url,
		Logger: logger, Timing: timing})
	if err != nil {
		t.Fatal(err)
	}
	_, pw, _, err := srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return Attach(t, url, client.New(url, client.BasicAuth("admin", pw)))
}

// Attach reads the owner's organization and project on the control plane
// at url and creates a link token.
func Attach(t testing.TB, url string, admin *client.Client) *Owner {
	t.Helper()
	ctx := context.Background()
	o := &Owner{URL: url, Admin: admin}
	orgs, err := admin.Orgs(ctx)
	if err != nil || len(orgs) == 0 {
		t.Fatalf("orgs: %v %v", orgs, err)
	}
	o.OrgID = orgs[0].ID
	projects, err := admin.Projects(ctx)
	if err != nil || len(projects) == 0 {
		t.Fatalf("projects: %v %v", projects, err)
	}
	o.GroupID = projects[0].ID
	tok, err := admin.CreateLinkToken(ctx, o.OrgID, api.LinkTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	o.LinkToken = tok.LinkToken
	return o
}

// WaitDeployment waits until an agent reported the deployment name and
// records its project in SourceGroupID.
func (o *Owner) WaitDeployment(t testing.TB, name string) api.AvailableDeployment {
	t.Helper()
	var found api.AvailableDeployment
	mongotest.WaitForErr(t, "deployment "+name, 30*time.Second, func() (bool, error) {
		ps, err := o.Admin.AvailableProjects(context.Background(), o.OrgID)
		if err != nil {
			return false, err
		}
		for _, p := range ps {
			for _, d := range p.Deployments {
				if d.Name == name {
					o.SourceGroupID, found = p.ProjectID, d
					return true, nil
				}
			}
		}
		return false, nil
	})
	return found
}

// Request is a migration request from the deployment source (found by
// WaitDeployment) to the cluster dest through the migration host host.
func (o *Owner) Request(host, source, dest string) api.MigrationRequest {
	return api.MigrationRequest{
		Source:         api.MigrationSource{ClusterName: source, GroupID: o.SourceGroupID, ManagedAuthentication: true},
		Destination:    api.MigrationDestination{ClusterName: dest, GroupID: o.GroupID, HostnameSchemaType: api.HostnamePublic},
		MigrationHosts: []string{host},
	}
}

// Validate creates a validation of req and waits for its result.
func (o *Owner) Validate(t testing.TB, req api.MigrationRequest) api.ValidationChecks {
	t.Helper()
	ctx := context.Background()
	v, err := o.Admin.CreateValidation(ctx, o.GroupID, req)
	if err != nil {
		t.Fatal(err)
	}
	var checks api.ValidationChecks
	mongotest.WaitForErr(t, "validation result", 60*time.Second, func() (bool, error) {
		checks, err = o.Admin.ValidationChecks(ctx, o.GroupID, v.ID)
		return err == nil && checks.Status != api.ValidationPending, err
	})
	return checks
}
