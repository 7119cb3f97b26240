package controlplane

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

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
		call(t, h, "POST", "/api/agent/v1/migrations/"+m.ID+"/report", agent,
			api.Report{ChangesSynced: 1, DowntimeSeconds: 19, Verification: api.Verification{Status: api.VerificationPassed}}, nil)
		var rep api.MigrationReport
		call(t, h, "GET", migPath+"/x-report", admin, nil, &rep)
		if rep.DowntimeSeconds != 45 {
			t.Errorf("report downtime %v s, want 45 s (confirmation to completion)", rep.DowntimeSeconds)
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
