package controlplane

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/api"
)

// TestDowntimeFromConfirmation: the report's downtime runs from the
// operator's confirmation to completion as the control plane recorded them,
// even when the migration host was lost in between and reports a shorter
// figure of its own (it counts from when it saw the directive).
func TestDowntimeFromConfirmation(t *testing.T) {
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
		call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/progress", agent, api.Progress{State: api.StateRunning, CanCommit: true}, &api.ProgressAck{})
		time.Sleep(10 * time.Second)

		// The operator confirms; the host is lost for 26 s (stalled), comes
		// back, and finalizes 19 s later by its own count.
		if code := call(t, h, "PUT", migPath+"/cutover", admin, nil, nil); code != http.StatusAccepted {
			t.Fatalf("cutover: %d", code)
		}
		time.Sleep(35 * time.Second)
		synctest.Wait()
		var v api.MigrationProgress
		call(t, h, "GET", migPath+"/x-progress", admin, nil, &v)
		if !v.Stalled {
			t.Fatal("the lost host did not stall the migration")
		}
		time.Sleep(10 * time.Second)
		// A part that cannot be is refused, naming it; nothing is stored.
		bad := api.Report{ChangesSynced: 1, DowntimeSeconds: 19, Verification: api.Verification{Status: api.VerificationPassed},
			Downtime: &api.Downtime{VerificationMode: "continuous", DrainSeconds: -1}}
		if code, body := callRaw(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/report", agent, bad); code != http.StatusBadRequest || !strings.Contains(string(body), "downtime.drainSeconds") {
			t.Errorf("report with a negative drain: %d %s, want 400 naming downtime.drainSeconds", code, body)
		}
		bad.Downtime = &api.Downtime{VerificationMode: "quick"}
		if code, body := callRaw(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/report", agent, bad); code != http.StatusBadRequest || !strings.Contains(string(body), "verificationMode") {
			t.Errorf("report with mode quick: %d %s, want 400 naming verificationMode", code, body)
		}
		parts := &api.Downtime{VerificationMode: "continuous", EngineSeconds: 18, CommitPointSeconds: 2, DrainSeconds: 3, IndexRestoreSeconds: 1, VerificationSeconds: 10,
			DocumentsRechecked: 7, Coverage: api.Coverage{Complete: true, Namespaces: 2, NamespacesByPass: 2}}
		call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/report", agent,
			api.Report{ChangesSynced: 1, DowntimeSeconds: 19, Downtime: parts, Verification: api.Verification{Status: api.VerificationPassed}}, nil)
		var rep api.MigrationReport
		call(t, h, "GET", migPath+"/x-report", admin, nil, &rep)
		if rep.DowntimeSeconds != 45 {
			t.Errorf("report downtime %v s, want 45 s (confirmation to completion)", rep.DowntimeSeconds)
		}
		// The engine's parts stay as measured; the rest of the 45 s is said.
		want := *parts
		want.OtherSeconds = 45 - 16
		if diff := cmp.Diff(&want, rep.Downtime); diff != "" {
			t.Errorf("itemised downtime (-want +got):\n%s", diff)
		}
		// The events agree: CUTOVER_STARTED to COMPLETED.
		events, err := s.listEvents(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var start, end time.Time
		for _, e := range events {
			switch e.Type {
			case api.EventCutoverStarted:
				start = e.CreatedAt
			case api.EventCompleted:
				end = e.CreatedAt
			}
		}
		if d := end.Sub(start).Seconds(); d != rep.DowntimeSeconds {
			t.Errorf("events span %v s, report says %v s", d, rep.DowntimeSeconds)
		}
	})
}

// TestReportWithoutItemisedDowntime: a report as agents sent it before the
// downtime was itemised is stored and served, without the parts (none are
// made up).
func TestReportWithoutItemisedDowntime(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, Options{DataPath: filepath.Join(t.TempDir(), "cp.db"), Key: make([]byte, KeySize), ExternalURL: "http://cp.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, orgID, err := s.Bootstrap(ctx, BootstrapOptions{Username: "root", Password: "root-password"})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	l := linkHost(t, h, orgID)
	m, migPath := l.migrate(t)
	call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/progress", l.agent, api.Progress{State: api.StateRunning, CanCommit: true}, &api.ProgressAck{})
	if code := call(t, h, "PUT", migPath+"/cutover", l.admin, nil, nil); code != http.StatusAccepted {
		t.Fatalf("cutover: %d", code)
	}
	old := json.RawMessage(`{"changesSynced":4,"downtimeSeconds":2.5,"durationSeconds":60,"bytesCopied":10,"collectionsCopied":1,` +
		`"verification":{"status":"PASSED","message":"1 namespaces compared","namespaces":[{"namespace":"db.c","matched":4,"missing":0,"extra":0,"differing":0}]}}`)
	if code, body := callRaw(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/report", l.agent, old); code != http.StatusNoContent {
		t.Fatalf("old report: %d %s", code, body)
	}
	var rep api.MigrationReport
	call(t, h, "GET", migPath+"/x-report", l.admin, nil, &rep)
	if rep.Downtime != nil || rep.ChangesSynced != 4 || rep.Verification.Status != api.VerificationPassed || len(rep.Verification.Namespaces) != 1 {
		t.Errorf("report %+v: want the stored fields and no itemised downtime", rep)
	}
}
