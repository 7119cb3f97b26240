package syncapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// fakeEngine is a fake of our own Engine interface.
type fakeEngine struct {
	started bool
	state   migration.State
}

func (f *fakeEngine) Start(StartRequest) error {
	if f.started {
		return fmt.Errorf("%w: already started", ErrInvalidState)
	}
	f.started, f.state = true, migration.StateRunning
	return nil
}
func (f *fakeEngine) Progress() migration.Progress { return migration.Progress{State: f.state} }
func (f *fakeEngine) Pause() error                 { f.state = migration.StatePaused; return nil }
func (f *fakeEngine) Resume() error                { f.state = migration.StateRunning; return nil }
func (f *fakeEngine) Commit() error {
	return fmt.Errorf("%w: the migration cannot commit yet", ErrInvalidState)
}
func (f *fakeEngine) Report() any { return nil }

func do(t *testing.T, h http.Handler, method, path, token string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(""))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestAPIStatesAndEnvelope(t *testing.T) {
	t.Parallel()
	f := &fakeEngine{state: migration.StateIdle}
	h := Handler(f, "")
	steps := []struct {
		method, path string
		code         int
		success      bool
		state        string
	}{
		{"GET", "/api/v1/progress", 200, true, "IDLE"},
		{"POST", "/api/v1/start", 200, true, "RUNNING"},
		{"POST", "/api/v1/start", 400, false, "RUNNING"},
		{"POST", "/api/v1/pause", 200, true, "PAUSED"},
		{"POST", "/api/v1/resume", 200, true, "RUNNING"},
		{"POST", "/api/v1/commit", 400, false, "RUNNING"},
	}
	for _, s := range steps {
		code, body := do(t, h, s.method, s.path, "")
		if code != s.code || body["success"] != s.success {
			t.Fatalf("%s %s = %d %v, want %d success=%v", s.method, s.path, code, body, s.code, s.success)
		}
		if !s.success && (body["error"] == "" || body["errorDescription"] == "") {
			t.Errorf("%s %s: failure without error and errorDescription: %v", s.method, s.path, body)
		}
		_, p := do(t, h, "GET", "/api/v1/progress", "")
		if got := p["progress"].(map[string]any)["state"]; got != s.state {
			t.Errorf("after %s %s: state %v, want %s", s.method, s.path, got, s.state)
		}
	}
}

func TestAPITokenRequired(t *testing.T) {
	t.Parallel()
	h := Handler(&fakeEngine{state: migration.StateIdle}, "s3cret")
	code, body := do(t, h, "GET", "/api/v1/progress", "")
	if code != http.StatusUnauthorized || body["success"] != false {
		t.Fatalf("without token: %d %v, want 401", code, body)
	}
	code, _ = do(t, h, "GET", "/api/v1/progress", "wrong")
	if code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	code, body = do(t, h, "GET", "/api/v1/progress", "s3cret")
	if diff := cmp.Diff(true, body["success"]); code != 200 || diff != "" {
		t.Fatalf("right token: %d %v", code, body)
	}
}

// startRecorder records the start request and refuses one mode, as
// cmd/livemigrate does for a mode it does not know.
type startRecorder struct {
	fakeEngine
	got StartRequest
}

func (f *startRecorder) Start(req StartRequest) error {
	if req.VerificationMode == "bogus" {
		return fmt.Errorf("%w: verificationMode %q", ErrInvalidRequest, req.VerificationMode)
	}
	f.got = req
	return f.fakeEngine.Start(req)
}

func TestAPIStartVerificationMode(t *testing.T) {
	t.Parallel()
	f := &startRecorder{fakeEngine: fakeEngine{state: migration.StateIdle}}
	h := Handler(f, "")
	post := func(body string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/start", strings.NewReader(body)))
		return rec.Code
	}
	if code := post(`{"verificationMode":"bogus"}`); code != http.StatusBadRequest {
		t.Errorf("bad verificationMode: %d, want 400", code)
	}
	if code := post(`{"verificationMode":"full"}`); code != http.StatusOK || f.got.VerificationMode != "full" {
		t.Errorf("verificationMode full: %d, engine got %+v", code, f.got)
	}
}
