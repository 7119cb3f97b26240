package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/controlplane/cptest"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// runningAgent is an agent whose Run result the test reads.
type runningAgent struct {
	cancel context.CancelFunc
	done   chan error
}

func runCredAgent(t *testing.T, cp *cptest.Owner, host, stateDir string) *runningAgent {
	t.Helper()
	a, err := agent.New(agent.Options{LinkToken: cp.LinkToken, Hostname: host, StateDir: stateDir, Version: "test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// ended waits for the agent's Run to return on its own.
func (r *runningAgent) ended(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("the agent still runs after %v", within)
		return nil
	}
}

func (r *runningAgent) stop() {
	r.cancel()
	err := <-r.done
	r.done <- err
}

func readCredential(t *testing.T, path string) map[string]string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("credential file %s has mode %v, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]string
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("credential file: %v: %s", err, b)
	}
	return c
}

// TestAgentCredential runs real agents against a real control plane: the
// agent keeps its credential in its state directory (0600) and a restart
// keeps its identity without anyone's approval; an agent with only the link
// token for the same hostname is held; once an owner approves it, it takes
// over and the previous agent stops with ErrAgentRevoked; revoking it stops
// it at once, and a restart with the revoked credential is refused.
func TestAgentCredential(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := startControlPlane(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	credA := filepath.Join(dirA, "credential-"+cp.OrgID+"-host1.json")
	credB := filepath.Join(dirB, "credential-"+cp.OrgID+"-host1.json")

	agents := func() []api.Agent {
		t.Helper()
		as, err := cp.Admin.Agents(ctx, cp.OrgID)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	a := runCredAgent(t, cp, "host1", dirA)
	mongotest.WaitForErr(t, "agent registered", 20*time.Second, func() (bool, error) {
		return len(agents()) == 1 && readCredential(t, credA)["status"] == "ACTIVE", nil
	})
	id := agents()[0].ID
	if c := readCredential(t, credA); c["agentId"] != id || c["agentSecret"] == "" || c["orgId"] != cp.OrgID {
		t.Fatalf("stored credential: %v", c)
	}

	// Restarted with its state: the same agent, nothing held.
	a.stop()
	a = runCredAgent(t, cp, "host1", dirA)
	seen := agents()[0].LastSeenAt
	mongotest.WaitForErr(t, "restarted agent back", 20*time.Second, func() (bool, error) {
		as := agents()
		return len(as) == 1 && as[0].ID == id && as[0].LastSeenAt.After(seen), nil
	})
	held, err := cp.Admin.AgentRegistrations(ctx, cp.OrgID, "")
	if err != nil || len(held) != 0 {
		t.Fatalf("held registrations after a restart with the credential: %v %v", held, err)
	}

	// Another host with only the link token: held, while the first keeps running.
	b := runCredAgent(t, cp, "host1", dirB)
	mongotest.WaitForErr(t, "registration held", 20*time.Second, func() (bool, error) {
		held, err = cp.Admin.AgentRegistrations(ctx, cp.OrgID, api.DecisionPending)
		return len(held) == 1 && readCredential(t, credB)["status"] == "PENDING_APPROVAL", err
	})
	if held[0].AgentID != id || held[0].Hostname != "host1" {
		t.Fatalf("held: %+v", held[0])
	}
	select {
	case err := <-a.done:
		t.Fatalf("the first agent ended: %v", err)
	case err := <-b.done:
		t.Fatalf("the held agent ended: %v", err)
	case <-time.After(time.Second):
	}

	// Approved: the held agent takes over; the first one stops.
	if _, err := cp.Admin.ApproveAgentRegistration(ctx, cp.OrgID, held[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := a.ended(t, 30*time.Second); !errors.Is(err, agent.ErrAgentRevoked) {
		t.Fatalf("replaced agent's Run: %v, want ErrAgentRevoked", err)
	}
	mongotest.WaitForErr(t, "approved agent active", 30*time.Second, func() (bool, error) {
		c := readCredential(t, credB)
		return c["status"] == "ACTIVE" && c["agentId"] == id, nil
	})

	// Revoked: it stops at once, and cannot come back with its credential.
	start := time.Now()
	if err := cp.Admin.RevokeAgent(ctx, cp.OrgID, id); err != nil {
		t.Fatal(err)
	}
	if err := b.ended(t, 30*time.Second); !errors.Is(err, agent.ErrAgentRevoked) {
		t.Fatalf("revoked agent's Run: %v, want ErrAgentRevoked", err)
	}
	t.Logf("revoked agent stopped %v after the revocation", time.Since(start).Round(time.Millisecond))
	b = runCredAgent(t, cp, "host1", dirB)
	if err := b.ended(t, 20*time.Second); !errors.Is(err, agent.ErrAgentRevoked) {
		t.Fatalf("restart with a revoked credential: %v, want ErrAgentRevoked", err)
	}
}
