package controlplane_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongodb-forks/digest"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// limitsEnv is a control plane with the default credential limits that
// trusts X-Forwarded-For, so a test can speak from several addresses.
type limitsEnv struct {
	t     *testing.T
	url   string
	orgID string
	admin *client.Client
}

func newLimitsEnv(t *testing.T) *limitsEnv {
	t.Helper()
	var handler http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	srv, err := controlplane.New(t.Context(), controlplane.Options{
		DataPath: filepath.Join(t.TempDir(), "cp.db"), Key: bytes.Repeat([]byte{7}, controlplane.KeySize),
		ExternalURL: hs.URL, TrustProxy: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = srv.Handler()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	_, _, orgID, err := srv.Bootstrap(t.Context(), controlplane.BootstrapOptions{Username: "root", Password: "root-password"})
	must(t, err)
	return &limitsEnv{t: t, url: hs.URL, orgID: orgID, admin: client.New(hs.URL, client.BasicAuth("root", "root-password"),
		client.WithHTTPClient(&http.Client{Transport: fromAddr("10.9.9.9", http.DefaultTransport)}))}
}

// fromAddr sends every request as if from addr (X-Forwarded-For).
func fromAddr(addr string, rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("X-Forwarded-For", addr)
		return rt.RoundTrip(r)
	})
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (e *limitsEnv) do(rt http.RoundTripper, method, path, ctype, body string, auth func(*http.Request)) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	must(e.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, data}
}

// burst sends n attempts, 20 at a time, and counts the answers by status.
// Every 429 must carry Retry-After (whole seconds, at least 1) and the
// error code; no answer may be other than 401 or 429.
func burst(t *testing.T, n int, attempt func() answer, code func([]byte) string, wantCode string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			a := attempt()
			mu.Lock()
			defer mu.Unlock()
			counts[a.status]++
			switch a.status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("429 with Retry-After %q", a.header.Get("Retry-After"))
				}
				if c := code(a.body); c != wantCode {
					t.Errorf("429 with code %q, want %q: %s", c, wantCode, a.body)
				}
			default:
				t.Errorf("wrong credentials answered %d: %s", a.status, a.body)
			}
		})
	}
	wg.Wait()
	t.Logf("%d wrong credentials: %v", n, counts)
	if counts[http.StatusTooManyRequests] == 0 {
		t.Errorf("%d wrong credentials in a burst: %v, want 429s", n, counts)
	}
	// Only admitted attempts are checked (and hashed): the free ones, then
	// one per lock of 1 s, 2 s, 4 s, … while the burst lasts (16: a burst
	// of up to 17 minutes on a loaded machine).
	if got := counts[http.StatusUnauthorized]; got > 16 {
		t.Errorf("%d of %d wrong credentials were checked (401), want at most 16: throttled attempts must not be checked", got, n)
	}
	return counts
}

func atlasCode(b []byte) string {
	var env api.ErrorEnvelope
	_ = json.Unmarshal(b, &env)
	return env.ErrorCode
}

func oauthCode(b []byte) string {
	var e api.OAuthError
	_ = json.Unmarshal(b, &e)
	return e.Error
}

const (
	attacker = "203.0.113.66"
	legit    = "198.51.100.7"
)

// TestThrottleLogin: 200 wrong passwords in a burst at POST /api/session
// get 429s with Retry-After, at most a dozen are checked at all, a known
// and an unknown username are throttled alike, the locked account refuses
// even its right password from the attacker's address, and its owner logs
// in from their own address.
func TestThrottleLogin(t *testing.T) {
	e := newLimitsEnv(t)
	_, err := e.admin.CreateUser(t.Context(), e.orgID, api.UserRequest{Username: "alice", Password: "alice-password", Roles: []api.Role{{RoleName: api.RoleOrgMember}}})
	must(t, err)
	login := func(addr, user, pass string) answer {
		body, _ := json.Marshal(api.SessionRequest{Username: user, Password: pass})
		return e.do(fromAddr(addr, http.DefaultTransport), "POST", "/api/session", "application/json", string(body), nil)
	}
	burst(t, 200, func() answer { return login(attacker, "alice", "guess") }, atlasCode, "RATE_LIMITED")
	// The right password from the locked address is refused unchecked. The
	// lock must have a second left for that: wait out short ones (the next
	// admitted guess doubles the lock).
	for i := 0; ; i++ {
		a := login(attacker, "alice", "guess")
		if a.status == http.StatusTooManyRequests {
			s, _ := strconv.Atoi(a.header.Get("Retry-After"))
			if s >= 2 {
				if a := login(attacker, "alice", "alice-password"); a.status != http.StatusTooManyRequests {
					t.Errorf("right password from the locked address: %d, want 429 (it must not be checked)", a.status)
				}
				break
			}
			time.Sleep(time.Duration(s) * time.Second)
		}
		if i == 20 {
			t.Fatal("no lock of 2 s or more after 20 more guesses")
		}
	}
	if a := login(legit, "alice", "alice-password"); a.status != http.StatusOK {
		t.Errorf("right password from another address during the attack: %d %s, want 200", a.status, a.body)
	}
	// An unknown name is throttled the same way (from a second address:
	// the first one is locked by now).
	burst(t, 100, func() answer { return login("203.0.113.67", "nobody", "guess") }, atlasCode, "RATE_LIMITED")
}

// TestThrottleBasic: a burst of wrong Basic passwords gets 429s; a client
// whose credentials were verified before keeps working from the same
// address (it costs no hashing).
func TestThrottleBasic(t *testing.T) {
	e := newLimitsEnv(t)
	_, err := e.admin.CreateUser(t.Context(), e.orgID, api.UserRequest{Username: "alice", Password: "alice-password", Roles: []api.Role{{RoleName: api.RoleOrgMember}}})
	must(t, err)
	rt := fromAddr(attacker, http.DefaultTransport)
	get := func(pass string) answer {
		return e.do(rt, "GET", "/api/atlas/v2/orgs/"+e.orgID, "", "", func(r *http.Request) { r.SetBasicAuth("alice", pass) })
	}
	if a := get("alice-password"); a.status != http.StatusOK {
		t.Fatalf("before the attack: %d %s", a.status, a.body)
	}
	burst(t, 200, func() answer { return get("guess") }, atlasCode, "RATE_LIMITED")
	if a := get("alice-password"); a.status != http.StatusOK {
		t.Errorf("verified credentials during the attack: %d %s, want 200", a.status, a.body)
	}
}

// TestThrottleDigest: the same for HTTP Digest with an API key.
func TestThrottleDigest(t *testing.T) {
	e := newLimitsEnv(t)
	key, err := e.admin.CreateAPIKey(t.Context(), e.orgID, api.APIKeyRequest{Desc: "ci", Roles: []api.Role{{RoleName: api.RoleOrgOwner}}})
	must(t, err)
	path := "/api/atlas/v2/orgs/" + e.orgID
	burst(t, 200, func() answer {
		return e.do(digest.NewTransportWithHTTPRoundTripper(key.PublicKey, "guess", fromAddr(attacker, http.DefaultTransport)), "GET", path, "", "", nil)
	}, atlasCode, "RATE_LIMITED")
	if a := e.do(digest.NewTransportWithHTTPRoundTripper(key.PublicKey, key.PrivateKey, fromAddr(legit, http.DefaultTransport)), "GET", path, "", "", nil); a.status != http.StatusOK {
		t.Errorf("right key from another address during the attack: %d %s, want 200", a.status, a.body)
	}
}

// TestThrottleOAuth: the same for the service accounts' token endpoint.
func TestThrottleOAuth(t *testing.T) {
	e := newLimitsEnv(t)
	sa, err := e.admin.CreateServiceAccount(t.Context(), e.orgID, api.ServiceAccountRequest{Name: "ci", Description: "pipeline", Roles: []string{"ORG_OWNER"}, SecretExpiresAfterHours: 24})
	must(t, err)
	token := func(addr, secret string) answer {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sa.ClientID}, "client_secret": {secret}}
		return e.do(fromAddr(addr, http.DefaultTransport), "POST", "/api/oauth/token", "application/x-www-form-urlencoded", form.Encode(), nil)
	}
	burst(t, 200, func() answer { return token(attacker, "mdb_sa_sk_guess") }, oauthCode, "temporarily_unavailable")
	if a := token(legit, sa.Secrets[0].Secret); a.status != http.StatusOK {
		t.Errorf("right secret from another address during the attack: %d %s, want 200", a.status, a.body)
	}
}

// TestUsernameOracle: a taken username is refused alike whether it is
// taken in the caller's org or in another one, and probing is throttled.
func TestUsernameOracle(t *testing.T) {
	e := newLimitsEnv(t)
	ctx := t.Context()
	other, err := e.admin.CreateOrg(ctx, "Other")
	must(t, err)
	key, err := e.admin.CreateAPIKey(ctx, other.ID, api.APIKeyRequest{Desc: "other owner", Roles: []api.Role{{RoleName: api.RoleOrgOwner}}})
	must(t, err)
	rt := fromAddr("10.1.1.1", http.DefaultTransport)
	create := func(name string) answer {
		body, _ := json.Marshal(api.UserRequest{Username: name, Password: "some-password", Roles: []api.Role{{RoleName: api.RoleOrgMember}}})
		return e.do(rt, "POST", "/api/atlas/v2/orgs/"+other.ID+"/users", "application/json", string(body), func(r *http.Request) { r.SetBasicAuth(key.PublicKey, key.PrivateKey) })
	}
	if a := create("mine"); a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	inOrg, elsewhere := create("mine"), create("root") // root is the other org's owner
	norm := func(a answer, name string) string {
		return a.header.Get("X-Error-Code") + strings.ReplaceAll(string(a.body), name, "NAME")
	}
	if inOrg.status != http.StatusConflict || elsewhere.status != inOrg.status || norm(inOrg, "mine") != norm(elsewhere, "root") {
		t.Errorf("taken here: %d %s\ntaken in another org: %d %s\nwant the same answer", inOrg.status, inOrg.body, elsewhere.status, elsewhere.body)
	}
	var throttled bool
	for i := range 30 {
		a := create("root")
		if a.status == http.StatusTooManyRequests {
			throttled = a.header.Get("Retry-After") != "" && atlasCode(a.body) == "RATE_LIMITED"
			break
		}
		if a.status != http.StatusConflict {
			t.Fatalf("probe %d: %d %s", i, a.status, a.body)
		}
	}
	if !throttled {
		t.Error("30 taken-username probes were never throttled")
	}
}
