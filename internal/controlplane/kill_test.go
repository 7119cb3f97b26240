package controlplane_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// serverProcess is a real `livemigrate server` process.
type serverProcess struct {
	cmd *exec.Cmd
	url string
}

func startServer(t *testing.T, bin, dir, addr string, logs *os.File) *serverProcess {
	t.Helper()
	cmd := exec.Command(bin, "server", "--listen", addr, "--data", filepath.Join(dir, "cp.db"), "--log-format", "json")
	cmd.Env = append(os.Environ(), "LIVEMIGRATE_OWNER_USERNAME=root", "LIVEMIGRATE_OWNER_PASSWORD=root-password")
	cmd.Stdout, cmd.Stderr = logs, logs
	must(t, cmd.Start())
	p := &serverProcess{cmd: cmd, url: "http://" + addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not come up")
	return nil
}

// TestKill9 kills a real server process mid-migration and restarts it on the
// same file: nothing acknowledged is lost, the cutover window is unchanged,
// un-acked work is delivered again, and the migration completes.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the livemigrate binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "livemigrate")
	build := exec.Command("go", "build", "-o", bin, "github.com/livemigrate/livemigrate/cmd/livemigrate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	logs, err := os.Create(filepath.Join(dir, "server.log"))
	must(t, err)
	defer logs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startServer(t, bin, dir, addr, logs)
	admin := client.New(p.url, client.BasicAuth("root", "root-password"))
	orgs, err := admin.Orgs(ctx)
	must(t, err)
	orgID := orgs[0].ID
	projects, err := admin.Projects(ctx)
	must(t, err)
	groupID := projects[0].ID
	dst := mongotest.StartDestination(t, mongotest.WithAuth("u", "secret-dest-pw"))
	for _, name := range []string{"dest", "dest2"} {
		_, err = admin.CreateCluster(ctx, groupID, api.ClusterRequest{Name: name, ConnectionString: "mongodb://u:secret-dest-pw@" + dst.Addr() + "/?directConnection=true"})
		must(t, err)
	}
	tok, err := admin.CreateLinkToken(ctx, orgID, api.LinkTokenRequest{})
	must(t, err)
	claims, err := client.ParseLinkToken(tok.LinkToken)
	must(t, err)
	agent, _, err := client.RegisterAgent(ctx, tok.LinkToken, "host-a", "v1")
	must(t, err)
	must(t, agent.ReportDeployments(ctx, []api.Deployment{{Name: "rs0"}}))
	avail, err := admin.AvailableProjects(ctx, orgID)
	must(t, err)
	req := api.MigrationRequest{
		Source:         api.MigrationSource{ClusterName: "rs0", GroupID: avail[0].ProjectID, Username: "s", Password: "secret-src-pw"},
		Destination:    api.MigrationDestination{ClusterName: "dest", GroupID: groupID, HostnameSchemaType: api.HostnamePublic},
		MigrationHosts: []string{"host-a"},
	}
	m, err := admin.CreateMigration(ctx, groupID, req)
	must(t, err)
	req.Destination.ClusterName = "dest2"
	v, err := admin.CreateValidation(ctx, groupID, req)
	must(t, err)
	var items []api.WorkItem
	mongotest.WaitForErr(t, "start work (after its destination user) and validate work", 30*time.Second, func() (bool, error) {
		items, err = agent.PollWork(ctx, time.Second)
		return len(items) == 2, err
	})
	var userPassword string // the migration's destination user's, sealed in the store like the others
	for _, it := range items {
		if it.Kind == api.WorkStart {
			userPassword = it.Spec.Destination.Password
		}
	}
	if userPassword == "" || userPassword == "secret-dest-pw" {
		t.Fatalf("start work destination password %q: want the migration user's own", userPassword)
	}
	_, err = agent.PostProgress(ctx, m.ID, api.Progress{State: api.StateRunning, CanCommit: true, LagTimeSeconds: 2})
	must(t, err)
	before, err := admin.MigrationProgress(ctx, groupID, m.ID)
	must(t, err)
	eventsBefore, err := admin.MigrationEvents(ctx, groupID, m.ID)
	must(t, err)

	must(t, p.cmd.Process.Kill()) // SIGKILL
	_ = p.cmd.Wait()
	p = startServer(t, bin, dir, addr, logs)

	after, err := admin.MigrationProgress(ctx, groupID, m.ID)
	must(t, err)
	if after.Migration.Status != api.MigrationWorking || !after.Migration.ReadyForCutover || after.CutoverWindow == nil ||
		!after.CutoverWindow.ExpiresAt.Equal(before.CutoverWindow.ExpiresAt) {
		t.Fatalf("after restart: %+v window %+v; before: window %+v", after.Migration, after.CutoverWindow, before.CutoverWindow)
	}
	eventsAfter, err := admin.MigrationEvents(ctx, groupID, m.ID)
	must(t, err)
	if len(eventsAfter) != len(eventsBefore) {
		t.Errorf("events after restart %d, before %d", len(eventsAfter), len(eventsBefore))
	}
	// The agent's secret still works and un-acked work comes again.
	items2, err := agent.PollWork(ctx, time.Second)
	must(t, err)
	if len(items2) != 2 || items2[0].ID != items[0].ID || items2[1].ID != items[1].ID {
		t.Fatalf("work after restart = %+v, want the same two items", items2)
	}
	for _, it := range items2 {
		must(t, agent.AckWork(ctx, it.ID))
	}
	must(t, agent.PostValidationResult(ctx, v.ID, api.ValidationResult{Status: api.ValidationSuccess}))
	must(t, admin.Cutover(ctx, groupID, m.ID))
	items3, err := agent.PollWork(ctx, time.Second)
	must(t, err)
	if len(items3) != 1 || items3[0].Kind != api.WorkCutover {
		t.Fatalf("work after cutover = %+v", items3)
	}
	must(t, agent.PostReport(ctx, m.ID, api.Report{ChangesSynced: 5, Verification: api.Verification{Status: api.VerificationPassed}}))
	final, err := admin.Migration(ctx, groupID, m.ID)
	must(t, err)
	if final.Status != api.MigrationComplete {
		t.Fatalf("final status %s", final.Status)
	}

	// Graceful stop, then no secret in the store files or the logs.
	must(t, p.cmd.Process.Signal(os.Interrupt))
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "cp.db*"))
	files = append(files, logs.Name())
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		for _, s := range []string{tok.LinkToken, claims.Secret, "secret-src-pw", "secret-dest-pw", "root-password", userPassword} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains secret %q", filepath.Base(f), s)
			}
		}
	}
}
