package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/livemigrate/livemigrate/internal/api"
)

// apiError is an error with the HTTP status and Atlas error code it maps to.
// Handlers return it; writeError turns it into the envelope. params are
// Atlas's "parameters" (the identifiers the detail names); field, when set,
// names the request field at fault (Atlas's badRequestDetail).
type apiError struct {
	status int
	code   string
	detail string
	params []any
	field  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.code, e.detail) }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, detail: fmt.Sprintf(format, args...)}
}

// withParams sets the error's Atlas parameters.
func (e *apiError) withParams(params ...any) *apiError {
	e.params = params
	return e
}

// onField names the request field at fault.
func (e *apiError) onField(field string) *apiError {
	e.field = field
	return e
}

// Errors callers branch on.
var (
	errUnauthenticated = errorf(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: HTTP Digest with an API key, Basic with an API key or user, a service account's Bearer token, or a session cookie")
	errForbidden       = errorf(http.StatusForbidden, "USER_UNAUTHORIZED", "the current user is not authorized to perform this action")
	errCSRF            = errorf(http.StatusForbidden, "CSRF_TOKEN_INVALID", "session requests that change state need the X-CSRF-Token header")
	errCrossSite       = errorf(http.StatusForbidden, "CROSS_SITE_REQUEST", "cross-site requests that change state are refused: send them from the control plane's own origin, or authenticate with a Bearer token")
	errBodyTooLarge    = errorf(http.StatusBadRequest, "REQUEST_BODY_TOO_LARGE", "request body exceeds the size limit")
)

// Not-found errors, with Atlas's per-resource codes and parameters.
func orgNotFound(id string) *apiError {
	return errorf(http.StatusNotFound, "ORG_NOT_FOUND", "No organization with ID %s exists.", id).withParams(id)
}

func groupNotFound(id string) *apiError {
	return errorf(http.StatusNotFound, "GROUP_NOT_FOUND", "No group with ID %s exists.", id).withParams(id)
}

func clusterNotFound(name, groupID string) *apiError {
	return errorf(http.StatusNotFound, "CLUSTER_NOT_FOUND", "No cluster named %s exists in group %s.", name, groupID).withParams(name, groupID)
}

func migrationNotFound(id string) *apiError {
	return errorf(http.StatusNotFound, "LIVE_MIGRATION_NOT_FOUND", "No live migration with ID %s exists.", id).withParams(id)
}

func validationNotFound(id string) *apiError {
	return errorf(http.StatusNotFound, "LIVE_MIGRATION_VALIDATION_NOT_FOUND", "No live migration validation with ID %s exists.", id).withParams(id)
}

// notFound is the generic 404 for resources Atlas has no code of its own for.
func notFound(what, id string) *apiError {
	return errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "%s %s not found", what, id).withParams(id)
}

func badRequest(code, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, code, format, args...)
}

func conflict(code, format string, args ...any) *apiError {
	return errorf(http.StatusConflict, code, format, args...)
}

// writeError is the one place that maps an error to a status and the JSON
// envelope. Errors that are not apiErrors are logged and answered with 500
// without detail, so internal messages never reach users.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			ae = errorf(http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "the request was cancelled")
		default:
			s.logger.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
			ae = errorf(http.StatusInternalServerError, "UNEXPECTED_ERROR", "unexpected error")
		}
	}
	env := api.ErrorEnvelope{Error: ae.status, ErrorCode: ae.code, Detail: ae.detail, Reason: http.StatusText(ae.status), Parameters: ae.params}
	if env.Parameters == nil {
		env.Parameters = []any{}
	}
	if ae.field != "" {
		env.BadRequestDetail = &api.BadRequestDetail{Fields: []api.FieldViolation{{Field: ae.field, Description: ae.detail}}}
	}
	setRetryAfter(w, err)
	w.Header().Set("X-Error-Code", ae.code)
	// Errors are plain JSON, as Atlas answers them, whatever version was asked for.
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, ae.status, env)
}
