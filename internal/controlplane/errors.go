package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/livemigrate/livemigrate/internal/api"
)

// apiError is an error with the HTTP status and Atlas-style error code it
// maps to. Handlers return it; writeError turns it into the envelope.
type apiError struct {
	status int
	code   string
	detail string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.code, e.detail) }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, detail: fmt.Sprintf(format, args...)}
}

// Errors callers branch on.
var (
	errUnauthenticated = errorf(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: HTTP Basic with an API key or user, or a session cookie")
	errForbidden       = errorf(http.StatusForbidden, "USER_UNAUTHORIZED", "the current user is not authorized to perform this action")
	errCSRF            = errorf(http.StatusForbidden, "CSRF_TOKEN_INVALID", "session requests that change state need the X-CSRF-Token header")
	errBodyTooLarge    = errorf(http.StatusBadRequest, "REQUEST_BODY_TOO_LARGE", "request body exceeds the size limit")
)

func notFound(what, id string) *apiError {
	return errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "%s %s not found", what, id)
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
	writeJSON(w, ae.status, api.ErrorEnvelope{Error: ae.status, ErrorCode: ae.code, Detail: ae.detail, Reason: http.StatusText(ae.status)})
}
