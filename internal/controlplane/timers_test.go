package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// call serves one request in memory (no network, so it works in a synctest bubble).
func call(t *testing.T, h http.Handler, method, path string, auth func(*http.Request), in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, body)
	req.RemoteAddr = "127.0.0.1:5000"
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != nil {
		auth(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if out != nil && rec.Code < 300 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, rec.Body)
		}
	}
	if rec.Code >= 300 && out != nil {
		t.Fatalf("%s %s: status %d: %s", method, path, rec.Code, rec.Body)
	}
	return rec.Code
}

func eventTypes(t *testing.T, s *Server, id string) []api.EventType {
	t.Helper()
	events, err := s.listEvents(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.EventType
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func hasEvent(types []api.EventType, want api.EventType) bool {
	for _, t := range types {
		if t == want {
			return true
		}
	}
	return false
}

// TestCutoverWindowTimers drives ready → window → warning → extend → expiry,
// and heartbeat loss → stalled → resumed, on a fake clock.
func TestCutoverWindowTimers(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := New(ctx, Options{DataPath: filepath.Join(dir, "cp.db"), Key: make([]byte, KeySize), ExternalURL: "http://cp.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		_, _, orgID, err := s.Bootstrap(ctx, BootstrapOptions{Username: "root", Password: "root-password"})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		admin := func(r *http.Request) { r.SetBasicAuth("root", "root-password") }
		var projects api.Page[api.Project]
		call(t, h, "GET", "/api/atlas/v2/groups", admin, nil, &projects)
		groupID := projects.Results[0].ID
		call(t, h, "POST", "/api/atlas/v2/groups/"+groupID+"/clusters", admin, api.ClusterRequest{Name: "dest", ConnectionString: "mongodb://d"}, &api.Cluster{})
		var tok api.LinkToken
		call(t, h, "POST", "/api/atlas/v2/orgs/"+orgID+"/liveMigrations/linkTokens", admin, api.LinkTokenRequest{}, &tok)
		var reg api.AgentRegistration
		call(t, h, "POST", "/api/agent/v1/register", nil, api.AgentRegisterRequest{LinkToken: tok.LinkToken, Hostname: "host-a", Version: "v1"}, &reg)
		agent := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+reg.AgentSecret) }
		call(t, h, "PUT", "/api/agent/v1/deployments", agent, api.DeploymentsReport{Deployments: []api.Deployment{{Name: "rs0"}}}, nil)
		var avail []api.AvailableProject
		call(t, h, "GET", "/api/atlas/v2/orgs/"+orgID+"/liveMigrations/availableProjects", admin, nil, &avail)
		var m api.Migration
		call(t, h, "POST", "/api/atlas/v2/groups/"+groupID+"/liveMigrations", admin, api.MigrationRequest{
			Source:         api.MigrationSource{ClusterName: "rs0", GroupID: avail[0].ProjectID},
			Destination:    api.MigrationDestination{ClusterName: "dest", GroupID: groupID, HostnameSchemaType: api.HostnamePublic},
			MigrationHosts: []string{"host-a"},
		}, &m)
		migPath := "/api/atlas/v2/groups/" + groupID + "/liveMigrations/" + m.ID
		progress := func(p api.Progress) api.ProgressAck {
			var ack api.ProgressAck
			call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/progress", agent, p, &ack)
			return ack
		}
		view := func() api.MigrationProgress {
			var v api.MigrationProgress
			call(t, h, "GET", migPath+"/x-progress", admin, nil, &v)
			return v
		}

		progress(api.Progress{State: api.StateRunning, Phase: "collection copy", LagTimeSeconds: 50})
		time.Sleep(time.Hour)
		synctest.Wait()
		if v := view(); v.Migration.ReadyForCutover || v.CutoverWindow != nil {
			t.Fatalf("before canCommit: %+v", v)
		}
		readyAt := time.Now()
		progress(api.Progress{State: api.StateRunning, Phase: "change event application", CanCommit: true})
		v := view()
		if !v.Migration.ReadyForCutover || v.CutoverWindow == nil || !v.CutoverWindow.ExpiresAt.Equal(readyAt.Add(120*time.Hour)) {
			t.Fatalf("after ready: %+v, window %+v; want expiry at %v", v.Migration, v.CutoverWindow, readyAt.Add(120*time.Hour))
		}

		// The agent stops heartbeating: lost after 30 s, migration stalled (not failed).
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if v := view(); !v.Stalled || v.Migration.Status != api.MigrationWorking {
			t.Fatalf("after missed heartbeats: stalled=%v status=%s, want stalled WORKING", v.Stalled, v.Migration.Status)
		}
		progress(api.Progress{State: api.StateRunning, CanCommit: true})
		if v := view(); v.Stalled {
			t.Fatal("still stalled after the agent came back")
		}
		if ev := eventTypes(t, s, m.ID); !hasEvent(ev, api.EventStalled) || !hasEvent(ev, api.EventResumed) {
			t.Errorf("events %v: want STALLED and RESUMED", ev)
		}

		// 24 h before expiry: a warning.
		time.Sleep(readyAt.Add(96*time.Hour + time.Second).Sub(time.Now()))
		synctest.Wait()
		if ev := eventTypes(t, s, m.ID); !hasEvent(ev, api.EventExpiryWarning) {
			t.Fatalf("events %v at 96 h: want EXPIRY_WARNING", ev)
		}
		var win api.CutoverWindow
		call(t, h, "POST", migPath+"/x-extend", admin, nil, &win)
		if !win.ExpiresAt.Equal(readyAt.Add(144 * time.Hour)) {
			t.Fatalf("extended window expires %v, want %v", win.ExpiresAt, readyAt.Add(144*time.Hour))
		}
		// Past the original expiry: still WORKING.
		time.Sleep(readyAt.Add(121 * time.Hour).Sub(time.Now()))
		synctest.Wait()
		if v := view(); v.Migration.Status != api.MigrationWorking {
			t.Fatalf("at 121 h after one extension: %s, want WORKING", v.Migration.Status)
		}
		// Past the extended expiry: EXPIRED, the agent is told to stop.
		time.Sleep(readyAt.Add(144*time.Hour + time.Second).Sub(time.Now()))
		synctest.Wait()
		if v := view(); v.Migration.Status != api.MigrationExpired || v.Migration.ReadyForCutover {
			t.Fatalf("after the extended window: %+v, want EXPIRED", v.Migration)
		}
		var items api.WorkItems
		call(t, h, "GET", "/api/agent/v1/work", agent, nil, &items)
		if n := len(items.Items); n == 0 || items.Items[n-1].Kind != api.WorkExpire {
			t.Errorf("work after expiry = %+v, want an expire item", items.Items)
		}
		if ack := progress(api.Progress{State: api.StateRunning}); ack.Directive != api.DirectiveStop {
			t.Errorf("progress after expiry: directive %s, want STOP", ack.Directive)
		}
		if code := call(t, h, "PUT", migPath+"/cutover", admin, nil, nil); code != http.StatusConflict {
			t.Errorf("cutover after expiry: %d, want 409", code)
		}
		cancel()
		<-done
		done = make(chan struct{})
		close(done)
	})
}
