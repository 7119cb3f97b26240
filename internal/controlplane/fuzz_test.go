package controlplane

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/livemigrate/livemigrate/internal/api"
)

// FuzzDecodeLinkToken: the link-token parser never panics; a refused token
// gets an error that names the problem and never echoes the token; an
// accepted one has an org and a secret and survives a round trip.
func FuzzDecodeLinkToken(f *testing.F) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		encodeLinkToken(api.LinkTokenClaims{URL: "http://127.0.0.1:8080", OrgID: "65f0c0ffee0000000000beef", Secret: "c2VjcmV0"}),
		"", "bm9wZQ", "!!!not base64!!!", "e30", // {}
		b64(`{"orgId":"o","secret":"s"}`), b64(`{"orgId":"o","secret":"s","extra":1}`), b64(`{"orgId":"o","secret":"s"} {}`),
		b64(`{"orgId":"o"}`), b64(`[]`), b64(`null`), b64(`{"orgId":1,"secret":"s"}`),
		base64.URLEncoding.EncodeToString([]byte(`{"orgId":"o","secret":"s"}`)), // padded
		strings.Repeat("A", maxLinkTokenLen+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := decodeLinkToken(tok)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "link token ") || len(msg) > 120 {
				t.Fatalf("decodeLinkToken(%q) error %q: want a short \"link token …\" message", tok, msg)
			}
			if len(tok) >= 8 && strings.Contains(msg, tok) {
				t.Fatalf("decodeLinkToken(%q) error %q echoes the token", tok, msg)
			}
			return
		}
		if c.OrgID == "" || c.Secret == "" {
			t.Fatalf("decodeLinkToken(%q) accepted %+v without org or secret", tok, c)
		}
		back, err := decodeLinkToken(encodeLinkToken(c))
		if err != nil || back != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, back, err)
		}
	})
}

// jsonTargets are the request types the control plane decodes, by index.
var jsonTargets = []func() any{
	func() any { return &api.AgentRegisterRequest{} },
	func() any { return &api.MigrationRequest{} },
	func() any { return &api.ServiceAccountRequest{} },
	func() any { return &api.APIKeyRequest{} },
	func() any { return &api.Progress{} },
	func() any { return &api.Report{} },
	func() any { return &api.ValidationResult{} },
	func() any { return &api.DeploymentsReport{} },
	func() any { return &api.ClusterRequest{} },
	func() any { return &api.LinkTokenRequest{} },
	func() any { return &api.WebhookRequest{} },
	func() any { return &api.SessionRequest{} },
	func() any { return &api.UserRequest{} },
	func() any { return &api.AgentHeartbeat{} },
}

// decodeCodes are every code decodeJSON answers with.
var decodeCodes = map[string]int{"INVALID_JSON": 400, "INVALID_REQUEST_BODY": 400, "REQUEST_BODY_TOO_LARGE": 400, "UNSUPPORTED_MEDIA_TYPE": 415}

// FuzzDecodeJSON: the control plane's JSON body decoder never panics, for
// any body, content type and target type; what it refuses gets a typed API
// error (400 or 415, a known code, a detail that says what is wrong
// without repeating the body); what it accepts is one JSON value that
// decodes into the target without unknown fields.
func FuzzDecodeJSON(f *testing.F) {
	for i, s := range []string{
		`{"linkToken":"abc","hostname":"h","version":"v1"}`,
		`{"source":{"clusterName":"rs0","groupId":"g"},"destination":{"clusterName":"d","groupId":"g"},"migrationHosts":["h"],"dropEnabled":true}`,
		`{"source":{"clusterName":"rs0"},"dropDestinationData":true}`,
		`{"phase":"copy","state":"RUNNING","lagTimeSeconds":9223372036854775807,"namespaces":[{"namespace":"a.b"}]}`,
		`{"changesSynced":1e400}`,
		`{"status":"SUCCESS","checks":[{"name":"x","status":"PASSED"}]}`,
		`{"deployments":[{"name":"rs0","shardsSize":-1}]}`,
		`{"name":"c","connectionString":"mongodb://u:p@h/"}`,
		`{"accessListIps":["10.0.0.0/8"]}`,
		`{"url":"https://hooks.example/x","secret":"s"}`,
		`{"username":"u","password":"p"} trailing`,
		`{"username":"u","unknown":1}`,
		`{"migrations":["a"]}`,
	} {
		f.Add([]byte(s), "application/json", uint8(i))
	}
	f.Add([]byte(`{"a":`), "", uint8(1))
	f.Add([]byte("\xff\xfe"), "text/plain", uint8(2))
	f.Add([]byte(`[1,2,3]`), "application/vnd.atlas.2024-05-30+json; charset=utf-8", uint8(2))
	f.Add([]byte(`{"lagTimeSeconds":"9"}`), "APPLICATION/JSON", uint8(3))
	f.Add([]byte(`  `), "application/json", uint8(0))
	f.Add(bytes.Repeat([]byte(`[`), 1<<12), "application/json", uint8(4))
	f.Fuzz(func(t *testing.T, body []byte, contentType string, target uint8) {
		v := jsonTargets[int(target)%len(jsonTargets)]()
		req := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		err := decodeOptionalJSON(w, req, 64<<10, v)
		if err == nil {
			if len(body) == 0 {
				return
			}
			// Accepted: exactly one JSON value, nothing unknown.
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			again := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if derr := dec.Decode(again); derr != nil || dec.More() {
				t.Fatalf("decodeJSON accepted %q into %T, a strict decoder does not: %v", body, v, derr)
			}
			if _, merr := json.Marshal(v); merr != nil {
				t.Fatalf("decoded %T does not marshal: %v", v, merr)
			}
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			t.Fatalf("decodeJSON(%q, %q) = %v (%T), want an API error", body, contentType, err, err)
		}
		if want, ok := decodeCodes[ae.code]; !ok || ae.status != want {
			t.Fatalf("decodeJSON(%q, %q): %d %s, want a known code", body, contentType, ae.status, ae.code)
		}
		if ae.detail == "" || !utf8.ValidString(ae.detail) && ae.code != "UNSUPPORTED_MEDIA_TYPE" {
			t.Fatalf("decodeJSON(%q): detail %q", body, ae.detail)
		}
		if ae.code == "INVALID_JSON" && len(body) >= 24 && strings.Contains(ae.detail, string(body)) {
			t.Fatalf("decodeJSON error %q repeats the body", ae.detail)
		}
		if ae.status != http.StatusBadRequest && ae.status != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d", ae.status)
		}
	})
}
