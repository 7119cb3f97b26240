// Package syncapi serves the local HTTP API of `livemigrate sync`, shaped
// like mongosync's (POST /api/v1/start, GET /api/v1/progress, POST
// /api/v1/pause, /resume, /commit; responses {success, error,
// errorDescription}). It binds to localhost by default; a bearer token is
// required when one is configured (always, when bound elsewhere).
package syncapi

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Engine is what the API drives (implemented by cmd/livemigrate over engine.Engine).
type Engine interface {
	// Start begins the run (IDLE → RUNNING); a second call is an error.
	Start(req StartRequest) error
	Progress() migration.Progress
	Pause() error
	Resume() error
	Commit() error
	// Report is the commit report (nil before commit).
	Report() any
}

// StartRequest is the body of POST /api/v1/start. Source and destination
// come from the command line; the namespace filters may be given here.
type StartRequest struct {
	Source            string             `json:"source,omitempty"`
	Destination       string             `json:"destination,omitempty"`
	IncludeNamespaces []migration.Filter `json:"includeNamespaces,omitempty"`
	ExcludeNamespaces []migration.Filter `json:"excludeNamespaces,omitempty"`
	// VerificationMode is how the commit verifies: "continuous" (default),
	// "full" or "after" (docs/design/commit.md).
	VerificationMode string `json:"verificationMode,omitempty"`
}

// Response is every endpoint's envelope.
type Response struct {
	Success          bool   `json:"success"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"errorDescription,omitempty"`
}

// ProgressResponse is GET /api/v1/progress.
type ProgressResponse struct {
	Success  bool               `json:"success"`
	Progress migration.Progress `json:"progress"`
	Report   any                `json:"commitReport,omitempty"`
}

// Handler returns the API over e; token, when not empty, is required as
// "Authorization: Bearer <token>".
func Handler(e Engine, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/start", func(w http.ResponseWriter, r *http.Request) {
		var req StartRequest
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
				reply(w, http.StatusBadRequest, Response{Error: "InvalidRequest", ErrorDescription: "body is not a start request: " + err.Error()})
				return
			}
		}
		result(w, e.Start(req))
	})
	mux.HandleFunc("GET /api/v1/progress", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, ProgressResponse{Success: true, Progress: e.Progress(), Report: e.Report()})
	})
	mux.HandleFunc("POST /api/v1/pause", func(w http.ResponseWriter, r *http.Request) { result(w, e.Pause()) })
	mux.HandleFunc("POST /api/v1/resume", func(w http.ResponseWriter, r *http.Request) { result(w, e.Resume()) })
	mux.HandleFunc("POST /api/v1/commit", func(w http.ResponseWriter, r *http.Request) { result(w, e.Commit()) })
	if token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			reply(w, http.StatusUnauthorized, Response{Error: "Unauthorized", ErrorDescription: "send the token given to --token as 'Authorization: Bearer <token>'"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// ErrInvalidState is wrapped by Engine errors for requests the current state forbids.
var ErrInvalidState = errors.New("invalid state")

// ErrInvalidRequest is wrapped by Engine errors for requests with a bad field.
var ErrInvalidRequest = errors.New("invalid request")

func result(w http.ResponseWriter, err error) {
	if err == nil {
		reply(w, http.StatusOK, Response{Success: true})
		return
	}
	status := http.StatusBadRequest
	if !errors.Is(err, ErrInvalidState) && !errors.Is(err, ErrInvalidRequest) {
		status = http.StatusInternalServerError
	}
	reply(w, status, Response{Error: "InvalidRequest", ErrorDescription: err.Error()})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
