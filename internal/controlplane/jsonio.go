package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
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

// negotiate sets the response content type to the Atlas media type named in
// Accept, if any, else to def.
func negotiate(w http.ResponseWriter, r *http.Request, def string) {
	ct := def
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		p := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		if strings.HasPrefix(p, "application/vnd.atlas.") && strings.HasSuffix(p, "+json") {
			ct = p
			break
		}
	}
	w.Header().Set("Content-Type", ct)
}
