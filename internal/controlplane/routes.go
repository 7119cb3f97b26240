package controlplane

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path prefixes.
const (
	atlasPrefix = "/api/atlas/v2"
	agentPrefix = "/api/agent/v1"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, s.instrument(pattern, h)) }
	av := func(versions []string, method, path string, h func(http.ResponseWriter, *http.Request, *principal) error) {
		handle(method+" "+atlasPrefix+path, s.authed(func(w http.ResponseWriter, r *http.Request, p *principal) error {
			r, err := withVersion(r, versions)
			if err != nil {
				return err
			}
			return h(w, r, p)
		}))
	}
	a := func(method, path string, h func(http.ResponseWriter, *http.Request, *principal) error) {
		av(versions20230101, method, path, h)
	}
	ag := func(method, path string, h func(http.ResponseWriter, *http.Request, *agent) error) {
		handle(method+" "+agentPrefix+path, s.agentAuthed(h))
	}

	// Browser sessions.
	handle("POST /api/session", http.HandlerFunc(s.handleLogin))
	handle("GET /api/session", s.authed(s.handleSession))
	handle("DELETE /api/session", s.authed(s.handleLogout))

	// Service accounts' OAuth 2.0 token endpoints (client credentials).
	handle("POST /api/oauth/token", http.HandlerFunc(s.handleOAuthToken))
	handle("POST /api/oauth/revoke", http.HandlerFunc(s.handleOAuthRevoke))

	// Identity and access.
	a("GET", "/orgs", s.handleListOrgs)
	a("POST", "/orgs", s.handleCreateOrg)
	a("GET", "/orgs/{orgId}", s.handleGetOrg)
	a("POST", "/orgs/{orgId}/users", s.handleCreateUser)
	a("POST", "/orgs/{orgId}/apiKeys", s.handleCreateAPIKey)
	a("GET", "/orgs/{orgId}/apiKeys", s.handleListAPIKeys)
	a("DELETE", "/orgs/{orgId}/apiKeys/{apiUserId}", s.handleDeleteAPIKey)
	a("GET", "/orgs/{orgId}/users", s.handleListUsers)
	a("DELETE", "/orgs/{orgId}/users/{userId}", s.handleDeleteUser)
	a("GET", "/orgs/{orgId}/events", s.handleAuditEvents)
	a("POST", "/orgs/{orgId}/serviceAccounts", s.handleCreateServiceAccount)
	a("GET", "/orgs/{orgId}/serviceAccounts", s.handleListServiceAccounts)
	a("DELETE", "/orgs/{orgId}/serviceAccounts/{clientId}", s.handleDeleteServiceAccount)
	a("GET", "/groups", s.handleListProjects)
	a("POST", "/groups", s.handleCreateProject)
	a("GET", "/groups/{groupId}", s.handleGetProject)
	a("POST", "/groups/{groupId}/clusters", s.handleCreateCluster)
	a("GET", "/groups/{groupId}/clusters", s.handleListClusters)
	a("GET", "/groups/{groupId}/clusters/{clusterName}", s.handleGetCluster)
	a("DELETE", "/groups/{groupId}/clusters/{clusterName}", s.handleDeleteCluster)
	a("PUT", "/groups/{groupId}/integrations/WEBHOOK", s.handlePutWebhook)
	a("GET", "/groups/{groupId}/integrations/WEBHOOK", s.handleGetWebhook)
	a("DELETE", "/groups/{groupId}/integrations/WEBHOOK", s.handleDeleteWebhook)

	// The eight Atlas live-migration endpoints.
	a("POST", "/orgs/{orgId}/liveMigrations/linkTokens", s.handleCreateLinkToken)
	a("DELETE", "/orgs/{orgId}/liveMigrations/linkTokens", s.handleDeleteLinkToken)
	a("GET", "/orgs/{orgId}/liveMigrations/availableProjects", s.handleAvailableProjects)
	av(versionsCreate, "POST", "/groups/{groupId}/liveMigrations/validate", s.handleCreateValidation)
	// GET …/validate/{validationId} shares its shape with GET …/{liveMigrationId}/x-…;
	// one pattern dispatches both (see getTwoSegments).
	a("GET", "/groups/{groupId}/liveMigrations/{first}/{second}", s.getTwoSegments)
	av(versionsCreate, "POST", "/groups/{groupId}/liveMigrations", s.handleCreateMigration)
	a("GET", "/groups/{groupId}/liveMigrations/{liveMigrationId}", s.handleGetMigration)
	a("PUT", "/groups/{groupId}/liveMigrations/{liveMigrationId}/cutover", s.handleCutover)

	// Extensions Atlas lacks ("x-" segments; the list is a GET Atlas does not have).
	a("GET", "/orgs/{orgId}/liveMigrations/x-agents", s.handleListAgents)
	a("DELETE", "/orgs/{orgId}/liveMigrations/x-agents/{agentId}", s.handleRevokeAgent)
	a("GET", "/orgs/{orgId}/liveMigrations/x-agentRegistrations", s.handleListRegistrations)
	a("POST", "/orgs/{orgId}/liveMigrations/x-agentRegistrations/{registrationId}/x-approve", s.handleApproveRegistration)
	a("POST", "/orgs/{orgId}/liveMigrations/x-agentRegistrations/{registrationId}/x-reject", s.handleRejectRegistration)
	a("GET", "/groups/{groupId}/liveMigrations", s.handleListMigrations)
	a("GET", "/groups/{groupId}/liveMigrations/validate/{validationId}/x-checks", s.handleValidationChecks)
	a("POST", "/groups/{groupId}/liveMigrations/{liveMigrationId}/x-cancel", s.handleCancel)
	a("POST", "/groups/{groupId}/liveMigrations/{liveMigrationId}/x-extend", s.handleExtend)
	a("GET", "/groups/{groupId}/liveMigrations/x-emailNotifications", s.handleGetEmailNotifications)
	a("PUT", "/groups/{groupId}/liveMigrations/x-emailNotifications", s.handlePutEmailNotifications)

	// Agent protocol.
	handle("POST "+agentPrefix+"/register", http.HandlerFunc(s.handleRegister))
	ag("POST", "/heartbeat", s.handleHeartbeat)
	ag("PUT", "/deployments", s.handleDeployments)
	ag("GET", "/work", s.handleWork)
	ag("POST", "/work/{itemId}/ack", s.handleAck)
	ag("POST", "/validations/{validationId}/result", s.handleValidationResult)
	ag("POST", "/migrations/{migrationId}/progress", s.handleMigrationProgress)
	ag("POST", "/migrations/{migrationId}/report", s.handleMigrationReport)

	// Operations.
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.store.Ping(r.Context()); err != nil {
			s.writeError(w, r, err)
			return
		}
		_, _ = w.Write([]byte("ok\n")) // a client that hung up needs no answer
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "no endpoint %s %s", r.Method, r.URL.Path))
	})
	if s.opts.UI != nil {
		mux.Handle("/", s.opts.UI)
	}
	return s.recoverPanics(mux)
}

// getTwoSegments serves GET /groups/{groupId}/liveMigrations/{first}/{second}:
// validate/{validationId}, {liveMigrationId}/x-progress, x-report and x-events.
func (s *Server) getTwoSegments(w http.ResponseWriter, r *http.Request, p *principal) error {
	first, second := r.PathValue("first"), r.PathValue("second")
	if first == "validate" {
		r.SetPathValue("validationId", second)
		return s.handleGetValidation(w, r, p)
	}
	r.SetPathValue("liveMigrationId", first)
	switch second {
	case "x-progress":
		return s.handleProgress(w, r, p)
	case "x-report":
		return s.handleReport(w, r, p)
	case "x-events":
		return s.handleEvents(w, r, p)
	}
	return errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "no endpoint %s %s", r.Method, r.URL.Path)
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument counts, times and logs requests by route pattern (never by
// raw URL, which could carry identifiers of other tenants into metrics).
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(d.Seconds())
		s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("duration", d))
	})
}

// recoverPanics turns a handler panic into a 500 envelope and a log entry.
func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}
