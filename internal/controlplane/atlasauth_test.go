package controlplane_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mongodb-forks/digest"

	"github.com/livemigrate/livemigrate/internal/api"
)

func (e *env) secretNamed(name string) string {
	for i, n := range e.names {
		if n == name {
			return e.secrets[i]
		}
	}
	e.t.Fatalf("no secret %s", name)
	return ""
}

// send does one request with the given headers and returns status, headers and envelope.
func (e *env) send(method, path string, hdr map[string]string, body string, auth func(*http.Request)) (int, http.Header, api.ErrorEnvelope) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.hs.URL+path, rd)
	must(e.t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var env api.ErrorEnvelope
	_ = json.Unmarshal(data, &env)
	return resp.StatusCode, resp.Header, env
}

// TestDigestAuth: API keys authenticate with HTTP Digest exactly as the
// Atlas SDK's transport speaks it; a replayed Authorization header, a
// wrong secret and a forged nonce are refused; the challenge lists Digest
// first and is never sent to browsers.
func TestDigestAuth(t *testing.T) {
	e := newEnv(t)
	pub, priv := e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner")
	var captured []string
	capture := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if a := r.Header.Get("Authorization"); a != "" {
			captured = append(captured, a)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	hc := &http.Client{Transport: digest.NewTransportWithHTTPRoundTripper(pub, priv, capture)}
	path := "/api/atlas/v2/orgs/" + e.orgID
	resp, err := hc.Get(e.hs.URL + path)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(captured) != 1 || !strings.HasPrefix(captured[0], "Digest ") {
		t.Fatalf("GET with Digest: status %d, Authorization %q", resp.StatusCode, captured)
	}
	// A POST with a body goes through too (the transport re-sends it).
	req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/api/atlas/v2/groups", strings.NewReader(`{"name":"digest project","orgId":"`+e.orgID+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = hc.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("POST with Digest: status %d, want 201", resp.StatusCode)
	}

	// Replay of the first request's header: refused.
	replay := func(r *http.Request) { r.Header.Set("Authorization", captured[0]) }
	if code, _, env := e.send("GET", path, nil, "", replay); code != http.StatusUnauthorized || env.ErrorCode != "UNAUTHORIZED" {
		t.Errorf("replayed Digest header: %d %s, want 401", code, env.ErrorCode)
	}
	// Wrong secret, forged nonce.
	bad := &http.Client{Transport: digest.NewTransport(pub, "wrong")}
	resp, err = bad.Get(e.hs.URL + path)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: status %d, want 401", resp.StatusCode)
	}
	forged := strings.Replace(captured[0], `nonce="`, `nonce="00`, 1)
	if code, _, _ := e.send("GET", path, nil, "", func(r *http.Request) { r.Header.Set("Authorization", forged) }); code != http.StatusUnauthorized {
		t.Errorf("forged nonce: status %d, want 401", code)
	}

	// The challenge: Digest first (the SDK reads only the first), Basic next;
	// browsers get neither.
	code, hdr, _ := e.send("GET", path, nil, "", nil)
	ch := hdr.Values("WWW-Authenticate")
	if code != http.StatusUnauthorized || len(ch) != 2 || !strings.HasPrefix(ch[0], `Digest realm="livemigrate", nonce="`) ||
		!strings.Contains(ch[0], `qop="auth"`) || !strings.Contains(ch[0], "algorithm=MD5") || !strings.HasPrefix(ch[1], "Basic ") {
		t.Errorf("challenge to an API client: %d %q", code, ch)
	}
	for _, h := range []map[string]string{{"Sec-Fetch-Mode": "navigate"}, {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}, {"X-Requested-With": "XMLHttpRequest"}} {
		if code, hdr, _ := e.send("GET", path, h, "", nil); code != http.StatusUnauthorized || len(hdr.Values("WWW-Authenticate")) != 0 {
			t.Errorf("challenge to a browser (%v): %d %q, want 401 without WWW-Authenticate", h, code, hdr.Values("WWW-Authenticate"))
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestAmbientCredentials: state-changing requests authenticated by what a
// browser attaches by itself (Basic, Digest, the session cookie) must be
// same-origin and JSON; login too.
func TestAmbientCredentials(t *testing.T) {
	e := newEnv(t)
	basic := func(r *http.Request) { r.SetBasicAuth("root", "root-password") }
	body := `{"name":"csrf project","orgId":"` + e.orgID + `"}`
	cases := []struct {
		name string
		hdr  map[string]string
		want int
		code string
	}{
		{"cross-site Origin", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403, "CROSS_SITE_REQUEST"},
		{"Sec-Fetch-Site cross-site", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403, "CROSS_SITE_REQUEST"},
		{"Origin null", map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403, "CROSS_SITE_REQUEST"},
		{"text/plain", map[string]string{"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"no Content-Type", nil, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "UNSUPPORTED_MEDIA_TYPE"},
	}
	for _, tc := range cases {
		if code, _, env := e.send("POST", "/api/atlas/v2/groups", tc.hdr, body, basic); code != tc.want || env.ErrorCode != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, code, env.ErrorCode, tc.want, tc.code)
		}
	}
	ok := map[string]string{"Content-Type": "application/json", "Origin": e.hs.URL, "Sec-Fetch-Site": "same-origin"}
	if code, _, env := e.send("POST", "/api/atlas/v2/groups", ok, body, basic); code != http.StatusCreated {
		t.Errorf("same-origin JSON: %d %s, want 201", code, env.ErrorCode)
	}

	login := `{"username":"root","password":"root-password"}`
	if code, _, env := e.send("POST", "/api/session", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, login, nil); code != 403 || env.ErrorCode != "CROSS_SITE_REQUEST" {
		t.Errorf("cross-site login: %d %s, want 403 CROSS_SITE_REQUEST", code, env.ErrorCode)
	}
	if code, _, env := e.send("POST", "/api/session", map[string]string{"Content-Type": "text/plain"}, login, nil); code != 415 {
		t.Errorf("text/plain login: %d %s, want 415", code, env.ErrorCode)
	}
	if code, _, env := e.send("POST", "/api/session", nil, login, nil); code != 415 {
		t.Errorf("login without Content-Type: %d %s, want 415", code, env.ErrorCode)
	}
	code, hdr, _ := e.send("POST", "/api/session", map[string]string{"Content-Type": "application/json", "Origin": e.hs.URL}, login, nil)
	if code != http.StatusOK {
		t.Fatalf("same-origin login: %d", code)
	}
	cookie := hdr.Get("Set-Cookie")
	cookie = cookie[:strings.IndexByte(cookie, ';')]
	var sess api.Session
	req, _ := http.NewRequest("GET", e.hs.URL+"/api/session", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	must(t, json.NewDecoder(resp.Body).Decode(&sess))
	resp.Body.Close()
	withCookie := func(r *http.Request) { r.Header.Set("Cookie", cookie); r.Header.Set("X-CSRF-Token", sess.CSRFToken) }
	if code, _, env := e.send("POST", "/api/atlas/v2/groups", map[string]string{"Content-Type": "text/plain"}, body, withCookie); code != 415 {
		t.Errorf("cookie session, text/plain: %d %s, want 415", code, env.ErrorCode)
	}
	if code, _, env := e.send("POST", "/api/atlas/v2/groups", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, body, withCookie); code != 403 {
		t.Errorf("cookie session, same-site: %d %s, want 403", code, env.ErrorCode)
	}
}

// TestAtlasRequestShapes: create and validate take what Atlas takes, per
// version, and answer with Atlas's status codes and envelopes.
func TestAtlasRequestShapes(t *testing.T) {
	e := newEnv(t)
	owner := func(r *http.Request) {
		r.SetBasicAuth(e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner"))
	}
	member := func(r *http.Request) {
		r.SetBasicAuth(e.secretNamed("publicKey-member"), e.secretNamed("privateKey-member"))
	}
	path := "/api/atlas/v2/groups/" + e.groupID + "/liveMigrations/validate"
	base := func(extra string) string {
		return `{"source":{"clusterName":"rs0","groupId":"` + e.sourceGroupID + `","managedAuthentication":true,"ssl":false},` +
			`"destination":{"clusterName":"dest","groupId":"` + e.groupID + `"},"migrationHosts":["host-a"]` + extra + `}`
	}
	v0530 := map[string]string{"Content-Type": api.MediaType20240530, "Accept": api.MediaType20240530}
	v0101 := map[string]string{"Content-Type": api.MediaType20230101, "Accept": api.MediaType20230101}
	cases := []struct {
		name  string
		hdr   map[string]string
		body  string
		auth  func(*http.Request)
		want  int
		code  string
		field string
	}{
		{"2024-05-30 without hostnameSchemaType, with _id and links", v0530, base(`,"_id":"0123456789abcdef01234567","links":[{"href":"x","rel":"self"}]`), owner, 200, "", ""},
		{"2024-05-30 hostnameSchemaType empty", v0530, strings.Replace(base(""), `"groupId":"`+e.groupID+`"}`, `"groupId":"`+e.groupID+`","hostnameSchemaType":""}`, 1), owner, 200, "", ""},
		{"2024-05-30 bad hostnameSchemaType", v0530, strings.Replace(base(""), `"groupId":"`+e.groupID+`"}`, `"groupId":"`+e.groupID+`","hostnameSchemaType":"CARRIER_PIGEON"}`, 1), owner, 400, "INVALID_ENUM_VALUE", "destination.hostnameSchemaType"},
		{"2024-05-30 with dropEnabled", v0530, base(`,"dropEnabled":true`), owner, 400, "INVALID_JSON", "dropEnabled"},
		{"2023-01-01 with dropEnabled", v0101, base(`,"dropEnabled":false`), owner, 200, "", ""},
		{"2023-01-01 without dropEnabled", v0101, base(""), owner, 400, "MISSING_ATTRIBUTE", "dropEnabled"},
		{"2023-01-01 with dropDestinationData", v0101, base(`,"dropEnabled":false,"dropDestinationData":true`), owner, 400, "INVALID_JSON", "dropDestinationData"},
		{"unknown field", v0530, base(`,"bogus":1`), owner, 400, "INVALID_JSON", ""},
		{"sharding entries (not supported)", v0530, base(`,"sharding":{"createSupportingIndexes":false,"shardingEntries":[{"database":"shop","collection":"orders","shardCollection":{"key":[{"customerId":"hashed"}]}}]}`), owner, 400, "SHARDING_NOT_SUPPORTED", "sharding"},
		{"createSupportingIndexes alone (not supported)", v0530, base(`,"sharding":{"createSupportingIndexes":true,"shardingEntries":[]}`), owner, 400, "SHARDING_NOT_SUPPORTED", "sharding"},
		{"unknown Accept version", map[string]string{"Content-Type": "application/json", "Accept": "application/vnd.atlas.2099-01-01+json"}, base(""), owner, 406, "NOT_ACCEPTABLE", ""},
		{"unknown Content-Type version", map[string]string{"Content-Type": "application/vnd.atlas.2099-01-01+json"}, base(""), owner, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"organization member", v0530, base(""), member, 403, "USER_UNAUTHORIZED", ""},
	}
	for _, tc := range cases {
		code, hdr, env := e.send("POST", path, tc.hdr, tc.body, tc.auth)
		if code != tc.want || (tc.code != "" && env.ErrorCode != tc.code) {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.name, code, env.ErrorCode, env.Detail, tc.want, tc.code)
			continue
		}
		if tc.code != "" && (env.Parameters == nil || hdr.Get("X-Error-Code") != tc.code) {
			t.Errorf("%s: envelope %+v, X-Error-Code %q: want parameters and the header", tc.name, env, hdr.Get("X-Error-Code"))
		}
		if tc.field != "" && (env.BadRequestDetail == nil || len(env.BadRequestDetail.Fields) != 1 || env.BadRequestDetail.Fields[0].Field != tc.field) {
			t.Errorf("%s: badRequestDetail %+v, want field %s", tc.name, env.BadRequestDetail, tc.field)
		}
		if code == 200 && hdr.Get("Content-Type") != tc.hdr["Accept"] {
			t.Errorf("%s: Content-Type %q, want %q", tc.name, hdr.Get("Content-Type"), tc.hdr["Accept"])
		}
	}
	// GET resources serve 2023-01-01 only.
	if code, _, env := e.send("GET", "/api/atlas/v2/orgs/"+e.orgID+"/liveMigrations/availableProjects", map[string]string{"Accept": api.MediaType20240530}, "", owner); code != 406 {
		t.Errorf("availableProjects with Accept 2024-05-30: %d %s, want 406", code, env.ErrorCode)
	}
	// Per-case not-found codes with parameters.
	code, _, env := e.send("GET", "/api/atlas/v2/groups/0123456789abcdef01234567/liveMigrations/0123456789abcdef01234567", nil, "", owner)
	if code != 404 || env.ErrorCode != "GROUP_NOT_FOUND" || len(env.Parameters) != 1 || env.Parameters[0] != "0123456789abcdef01234567" {
		t.Errorf("unknown project: %d %+v, want 404 GROUP_NOT_FOUND with the id as parameter", code, env)
	}
	// DELETE linkTokens: 204, then 404 as Atlas answers it with no link.
	del := "/api/atlas/v2/orgs/" + e.orgID + "/liveMigrations/linkTokens"
	if code, _, env := e.send("DELETE", del, nil, "", owner); code != http.StatusNoContent {
		t.Errorf("delete link: %d %s, want 204", code, env.ErrorCode)
	}
	if code, _, env := e.send("DELETE", del, nil, "", owner); code != http.StatusNotFound || env.ErrorCode != "UNEXPECTED_ERROR" {
		t.Errorf("delete link again: %d %s, want 404 UNEXPECTED_ERROR", code, env.ErrorCode)
	}
}
