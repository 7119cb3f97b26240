package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/livemigrate/livemigrate/internal/api"
)

// Body size limits.
const (
	maxBodyBytes      = 1 << 20 // Admin API
	maxAgentBodyBytes = 8 << 20 // progress reports list every namespace
)

// decodeJSON reads one JSON value from the request body into v, refusing
// unknown fields, trailing data, wrong content types and bodies over limit.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONMediaType(ct) {
		return errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type %q: want application/json or an application/vnd.atlas.*+json version", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		return badRequest("INVALID_REQUEST_BODY", "read request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("INVALID_JSON", "request body is not valid JSON for this endpoint: %s", jsonErrorDetail(err))
	}
	if dec.More() {
		return badRequest("INVALID_JSON", "request body has data after the JSON value")
	}
	return nil
}

// decodeOptionalJSON is decodeJSON that accepts an empty body.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decodeJSON(w, r, limit, v)
}

// jsonErrorDetail keeps decoder errors short and free of request content.
func jsonErrorDetail(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error"
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of body"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "cannot decode"
	}
}

func isJSONMediaType(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return ct == "application/json" || (strings.HasPrefix(ct, "application/vnd.atlas.") && strings.HasSuffix(ct, "+json"))
}

// writeJSON answers with status and v as JSON. The content type echoes the
// Atlas versioned media type when the caller asked for one.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Versions of the Atlas Admin API resources: every resource serves
// 2023-01-01; create and validate also serve 2024-05-30 (their latest; the
// 2023-01-01 version of their request is deprecated in Atlas).
var (
	versions20230101 = []string{api.MediaType20230101}
	versionsCreate   = []string{api.MediaType20240530, api.MediaType20230101}
)

type versionKey struct{}

// atlasMediaTypes returns the application/vnd.atlas.*+json types of an
// Accept or Content-Type header, lower-cased, without parameters.
func atlasMediaTypes(h string) []string {
	var out []string
	for _, part := range strings.Split(h, ",") {
		p := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		if strings.HasPrefix(p, "application/vnd.atlas.") && strings.HasSuffix(p, "+json") {
			out = append(out, p)
		}
	}
	return out
}

// withVersion picks the response version of a request to a resource that
// serves versions (newest first): the first of them the Accept header
// names, else (Accept names no Atlas version: application/json, */* or
// nothing) the resource's newest. It answers 406 when Accept names only
// versions the resource does not serve, and 415 when the request body is
// in a version the resource does not take.
func withVersion(r *http.Request, versions []string) (*http.Request, error) {
	chosen := versions[0]
	if asked := atlasMediaTypes(r.Header.Get("Accept")); len(asked) > 0 {
		chosen = ""
	pick:
		for _, a := range asked {
			for _, v := range versions {
				if a == v {
					chosen = v
					break pick
				}
			}
		}
		if chosen == "" {
			return r, errorf(http.StatusNotAcceptable, "NOT_ACCEPTABLE", "Accept %q: this resource serves %s", r.Header.Get("Accept"), strings.Join(versions, ", ")).withParams(r.Header.Get("Accept"))
		}
	}
	if ct := atlasMediaTypes(r.Header.Get("Content-Type")); len(ct) == 1 && !slices.Contains(versions, ct[0]) {
		return r, errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type %q: this resource takes %s", r.Header.Get("Content-Type"), strings.Join(versions, ", "))
	}
	return r.WithContext(context.WithValue(r.Context(), versionKey{}, chosen)), nil
}

// requestVersion is the Atlas version of the request body: the one its
// Content-Type names, else def.
func requestVersion(r *http.Request, def string) string {
	if ct := atlasMediaTypes(r.Header.Get("Content-Type")); len(ct) == 1 {
		return ct[0]
	}
	return def
}

// negotiate sets the response content type to the version withVersion
// chose for the request, or to def outside versioned resources.
func negotiate(w http.ResponseWriter, r *http.Request, def string) {
	ct := def
	if v, ok := r.Context().Value(versionKey{}).(string); ok && v != "" {
		ct = v
	}
	w.Header().Set("Content-Type", ct)
}
