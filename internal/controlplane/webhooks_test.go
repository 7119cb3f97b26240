package controlplane

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// roundTripFunc is an in-memory transport (usable in a synctest bubble).
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestWebhookRetries: a failing receiver gets the event again with backoff
// until it accepts it; deliveries carry the HMAC signature.
func TestWebhookRetries(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var attempts []time.Time
		var got api.Event
		var sig string
		transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Now())
			status := http.StatusInternalServerError
			if len(attempts) == 3 {
				status = http.StatusOK
				_ = json.Unmarshal(body, &got)
				sig = r.Header.Get(signatureHeader)
				if want := "sha256=" + hmacHex([]byte("hook-secret"), body); sig != want {
					t.Errorf("signature %q, want %q", sig, want)
				}
			}
			return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}}, nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		s, err := New(ctx, Options{DataPath: filepath.Join(dir, "cp.db"), Key: make([]byte, KeySize), ExternalURL: "http://cp.test",
			WebhookClient: &http.Client{Transport: transport}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		_, _, _, err = s.Bootstrap(ctx, BootstrapOptions{Username: "root", Password: "root-password"})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		admin := func(r *http.Request) { r.SetBasicAuth("root", "root-password") }
		var projects api.Page[api.Project]
		call(t, h, "GET", "/api/atlas/v2/groups", admin, nil, &projects)
		groupID := projects.Results[0].ID
		call(t, h, "PUT", "/api/atlas/v2/groups/"+groupID+"/integrations/WEBHOOK", admin, api.WebhookRequest{URL: "http://hooks.test/x", Secret: "hook-secret"}, &api.Webhook{})
		// A migration event of a webhook type.
		m := &migration{id: "m1", orgID: "o", groupID: groupID}
		start := time.Now()
		if err := s.store.Tx(ctx, func(st *store) error { return s.addEvent(ctx, st, m, api.EventFailed, "boom", start) }); err != nil {
			t.Fatal(err)
		}
		s.kickWebhooks()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(attempts) != 3 {
			t.Fatalf("attempts = %d, want 3", len(attempts))
		}
		if d1, d2 := attempts[1].Sub(attempts[0]), attempts[2].Sub(attempts[1]); d1 != time.Second || d2 != 2*time.Second {
			t.Errorf("backoff %v, %v; want 1s, 2s", d1, d2)
		}
		if got.Type != api.EventFailed || got.MigrationID != "m1" || got.Message != "boom" {
			t.Errorf("delivered %+v", got)
		}
		cancel()
		<-done
	})
}
