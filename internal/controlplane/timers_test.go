package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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
		l := linkHost(t, h, orgID)
		admin, agent := l.admin, l.agent
		m, migPath := l.migrate(t)
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
		time.Sleep(time.Until(readyAt.Add(96*time.Hour + time.Second)))
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
		time.Sleep(time.Until(readyAt.Add(121 * time.Hour)))
		synctest.Wait()
		if v := view(); v.Migration.Status != api.MigrationWorking {
			t.Fatalf("at 121 h after one extension: %s, want WORKING", v.Migration.Status)
		}
		// Past the extended expiry: EXPIRED, the agent is told to stop.
		time.Sleep(time.Until(readyAt.Add(144*time.Hour + time.Second)))
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

// callRaw serves one request in memory and returns the status and the body.
func callRaw(t *testing.T, h http.Handler, method, path string, auth func(*http.Request), in any) (int, []byte) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, body)
	req.RemoteAddr = "127.0.0.1:5000"
	if auth != nil {
		auth(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// wantRefused checks that a call is refused with status and errorCode.
func wantRefused(t *testing.T, h http.Handler, method, path string, auth func(*http.Request), status int, code string) api.ErrorEnvelope {
	t.Helper()
	got, body := callRaw(t, h, method, path, auth, nil)
	var env api.ErrorEnvelope
	if err := json.Unmarshal(body, &env); err != nil || got != status || env.ErrorCode != code {
		t.Fatalf("%s %s: %d %s, want %d %s", method, path, got, body, status, code)
	}
	return env
}

// TestHostLossTimers drives the lost-host threshold on a fake clock: a
// host is lost exactly MissedHeartbeatsLost heartbeat intervals after its
// last call; while lost its migration is not ready, has no lag, says why and
// refuses cutover with MIGRATION_HOST_LOST; back, it is ready again only
// after a fresh canCommit progress; a host lost during the cutover shows it,
// and a re-registered agent gets the cutover again.
func TestHostLossTimers(t *testing.T) {
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
		if lostAfter := s.timing.AgentLostAfter; lostAfter != MissedHeartbeatsLost*10*time.Second {
			t.Fatalf("default AgentLostAfter = %v, want %d × 10 s", lostAfter, MissedHeartbeatsLost)
		}
		_, _, orgID, err := s.Bootstrap(ctx, BootstrapOptions{Username: "root", Password: "root-password"})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		l := linkHost(t, h, orgID)
		admin, agent := l.admin, l.agent
		m, migPath := l.migrate(t)
		progress := func(p api.Progress) {
			call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/progress", agent, p, &api.ProgressAck{})
		}
		get := func() api.Migration {
			var v api.Migration
			call(t, h, "GET", migPath, admin, nil, &v)
			return v
		}
		view := func() api.MigrationProgress {
			var v api.MigrationProgress
			call(t, h, "GET", migPath+"/x-progress", admin, nil, &v)
			return v
		}
		lastEvent := func() api.Event {
			events, err := s.listEvents(context.Background(), m.ID)
			if err != nil || len(events) == 0 {
				t.Fatalf("events: %v %v", events, err)
			}
			return events[len(events)-1]
		}

		progress(api.Progress{State: api.StateRunning, Phase: "change event application", CanCommit: true, LagTimeSeconds: 3})
		lastCall := time.Now()
		if v := get(); !v.ReadyForCutover || v.LagTimeSeconds == nil || *v.LagTimeSeconds != 3 || v.HostLost != nil {
			t.Fatalf("after ready: %+v", v)
		}

		// Heartbeats every interval keep the host alive for any length of time.
		for range 10 {
			time.Sleep(10 * time.Second)
			call(t, h, "POST", "/api/agent/v1/heartbeat", agent, api.AgentHeartbeat{Migrations: []string{m.ID}}, nil)
			lastCall = time.Now()
		}
		synctest.Wait()
		if v := get(); v.HostLost != nil || !v.ReadyForCutover {
			t.Fatalf("heartbeating host: %+v", v)
		}

		// One millisecond short of the threshold: not lost.
		lostAfter := MissedHeartbeatsLost * s.timing.HeartbeatInterval
		time.Sleep(lostAfter - time.Millisecond)
		synctest.Wait()
		if v := get(); v.HostLost != nil || !v.ReadyForCutover {
			t.Fatalf("%v after the last call: %+v, want not lost yet", lostAfter-time.Millisecond, v)
		}
		// At the threshold: lost.
		time.Sleep(time.Millisecond)
		synctest.Wait()
		v := view()
		mig := get()
		switch {
		case mig.HostLost == nil || v.Migration.HostLost == nil:
			t.Fatalf("at %v: migration %+v, want hostLost", lostAfter, mig)
		case mig.ReadyForCutover || mig.LagTimeSeconds != nil:
			t.Errorf("lost host: readyForCutover %v, lag %v; want false and null", mig.ReadyForCutover, mig.LagTimeSeconds)
		case mig.Status != api.MigrationWorking || !v.Stalled:
			t.Errorf("lost host: status %s stalled %v, want WORKING and stalled", mig.Status, v.Stalled)
		case !mig.HostLost.LastSeenAt.Equal(lastCall.UTC()) || mig.HostLost.Hostname != "host-a" || mig.HostLost.DuringCutover:
			t.Errorf("hostLost = %+v, want host-a last seen at %v, not during cutover", mig.HostLost, lastCall.UTC())
		case !strings.Contains(mig.HostLost.Detail, "restart `livemigrate agent` on host-a with the same link token"):
			t.Errorf("hostLost.detail %q does not say what to do", mig.HostLost.Detail)
		}
		if e := lastEvent(); e.Type != api.EventStalled || !strings.Contains(e.Message, "nothing heard from it since") {
			t.Errorf("last event %+v, want STALLED saying since when", e)
		}
		env := wantRefused(t, h, "PUT", migPath+"/cutover", admin, http.StatusConflict, "MIGRATION_HOST_LOST")
		if !strings.Contains(env.Detail, "cannot cut over") || !strings.Contains(env.Detail, "livemigrate agent") {
			t.Errorf("cutover refusal detail %q", env.Detail)
		}

		// The host is back (network restored): not ready until a fresh canCommit.
		call(t, h, "POST", "/api/agent/v1/heartbeat", agent, api.AgentHeartbeat{}, nil)
		if v := get(); v.HostLost != nil || v.ReadyForCutover || v.LagTimeSeconds != nil {
			t.Fatalf("back before any progress: %+v, want not lost, not ready, no lag", v)
		}
		if e := lastEvent(); e.Type != api.EventResumed {
			t.Errorf("last event %+v, want RESUMED", e)
		}
		wantRefused(t, h, "PUT", migPath+"/cutover", admin, http.StatusConflict, "LIVE_MIGRATION_NOT_READY_FOR_CUTOVER")
		progress(api.Progress{State: api.StateRunning, Phase: "change event application", CanCommit: true, LagTimeSeconds: 1})
		if v := get(); !v.ReadyForCutover || v.LagTimeSeconds == nil || *v.LagTimeSeconds != 1 {
			t.Fatalf("back with a fresh progress: %+v, want ready with lag 1", v)
		}
		if code := call(t, h, "PUT", migPath+"/cutover", admin, nil, nil); code != http.StatusAccepted {
			t.Fatalf("cutover: %d, want 202", code)
		}

		// Lost during the cutover.
		time.Sleep(lostAfter)
		synctest.Wait()
		mig = get()
		if mig.HostLost == nil || !mig.HostLost.DuringCutover || !strings.Contains(mig.HostLost.Detail, "during the cutover") ||
			!strings.Contains(mig.HostLost.Detail, "cutover resumes") {
			t.Fatalf("lost during cutover: %+v", mig.HostLost)
		}
		if code := call(t, h, "PUT", migPath+"/cutover", admin, nil, nil); code != http.StatusAccepted {
			t.Errorf("repeated cutover while lost: %d, want 202 (already requested)", code)
		}
		// The agent restarts: it registers again and gets start and cutover.
		l.register(t)
		if v := view(); v.Migration.HostLost != nil || v.Stalled {
			t.Fatalf("after re-registration: %+v stalled %v", v.Migration, v.Stalled)
		}
		if e := lastEvent(); e.Type != api.EventResumed || !strings.Contains(e.Message, "the cutover resumes") {
			t.Errorf("last event %+v, want RESUMED saying the cutover resumes", e)
		}
		var items api.WorkItems
		call(t, h, "GET", "/api/agent/v1/work", agent, nil, &items)
		var kinds []api.WorkKind
		for _, it := range items.Items {
			kinds = append(kinds, it.Kind)
		}
		if len(kinds) != 2 || kinds[0] != api.WorkStart || kinds[1] != api.WorkCutover {
			t.Errorf("work after re-registration: %v, want [start cutover]", kinds)
		}
	})
}
