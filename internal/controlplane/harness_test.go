package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// exchange is one recorded HTTP round trip.
type exchange struct {
	method, path, reqType, respType string
	status                          int
	reqBody, respBody               []byte
}

// recorder is an http.RoundTripper that keeps every exchange.
type recorder struct {
	mu  sync.Mutex
	all []exchange
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchange{method: req.Method, path: req.URL.RequestURI(), reqType: req.Header.Get("Content-Type")}
	if req.Body != nil {
		x.reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(x.reqBody))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	x.respBody, _ = io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(x.respBody))
	x.status, x.respType = resp.StatusCode, resp.Header.Get("Content-Type")
	rec.mu.Lock()
	rec.all = append(rec.all, x)
	rec.mu.Unlock()
	return resp, nil
}

func (rec *recorder) last() exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.all[len(rec.all)-1]
}

func (rec *recorder) since(n int) []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]exchange(nil), rec.all[n:]...)
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.all)
}

// env is a running control plane with a populated org.
type env struct {
	t       *testing.T
	srv     *controlplane.Server
	hs      *httptest.Server
	dir     string
	logs    *syncBuffer
	rec     *recorder
	secrets []string // replaced in golden files, in order
	names   []string

	orgID, groupID, sourceGroupID string
	owner                         *client.Client // org owner API key
	member                        *client.Client // org member API key
	other                         *client.Client // owner of another org
	admin                         *client.Client
	agent                         *client.Client
	agentID                       string
	linkToken                     string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *env) secret(name, value string) {
	e.secrets = append(e.secrets, value)
	e.names = append(e.names, name)
}

func (e *env) client(creds client.Credentials) *client.Client {
	return client.New(e.hs.URL, creds, client.WithHTTPClient(&http.Client{Transport: e.rec}))
}

// newEnv starts a server on a fresh SQLite file with: an admin, an org with a
// project, owner and member API keys, another org with its owner, a
// destination cluster, a link token and a registered agent reporting one
// deployment ("rs0").
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, dir: t.TempDir(), logs: &syncBuffer{}, rec: &recorder{}}
	key := bytes.Repeat([]byte{7}, controlplane.KeySize)
	var handler http.Handler
	e.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	srv, err := controlplane.New(ctx, controlplane.Options{
		DataPath: filepath.Join(e.dir, "cp.db"), Key: key, ExternalURL: e.hs.URL, WebhookAllowPrivate: true,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// The auth matrix sends hundreds of wrong credentials from one
		// address; the limits are tested with their defaults (throttle_test.go).
		AuthLimits: controlplane.AuthLimits{PerAccountAddress: 1 << 20, PerAccount: 1 << 20, PerAddress: 1 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, handler = srv, srv.Handler()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	t.Cleanup(func() {
		e.hs.Close()
		stop()
		<-done
		srv.Close()
	})
	_, _, orgID, err := srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: "root", Password: "root-password"})
	if err != nil {
		t.Fatal(err)
	}
	e.orgID = orgID
	e.admin = e.client(client.BasicAuth("root", "root-password"))
	e.secret("root-password", "root-password")
	projects, err := e.admin.Projects(ctx)
	must(t, err)
	e.groupID = projects[0].ID
	ownerKey, err := e.admin.CreateAPIKey(ctx, orgID, api.APIKeyRequest{Desc: "owner", Roles: []api.Role{{OrgID: orgID, RoleName: api.RoleOrgOwner}}})
	must(t, err)
	memberKey, err := e.admin.CreateAPIKey(ctx, orgID, api.APIKeyRequest{Desc: "member", Roles: []api.Role{{OrgID: orgID, RoleName: api.RoleOrgMember}}})
	must(t, err)
	otherOrg, err := e.admin.CreateOrg(ctx, "Other")
	must(t, err)
	otherKey, err := e.admin.CreateAPIKey(ctx, otherOrg.ID, api.APIKeyRequest{Desc: "other", Roles: []api.Role{{OrgID: otherOrg.ID, RoleName: api.RoleOrgOwner}}})
	must(t, err)
	for _, k := range []api.APIKey{ownerKey, memberKey, otherKey} {
		e.secret("publicKey-"+k.Desc, k.PublicKey)
		e.secret("privateKey-"+k.Desc, k.PrivateKey)
	}
	e.owner = e.client(client.BasicAuth(ownerKey.PublicKey, ownerKey.PrivateKey))
	e.member = e.client(client.BasicAuth(memberKey.PublicKey, memberKey.PrivateKey))
	e.other = e.client(client.BasicAuth(otherKey.PublicKey, otherKey.PrivateKey))
	// A real destination that enforces authentication: the control plane
	// creates each migration's user there (destuser.go).
	dst := mongotest.StartDestination(t, mongotest.WithAuth("u", "dest-password"))
	_, err = e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: "dest", ConnectionString: "mongodb://destuser:destpw@" + dst.Addr() + "/?directConnection=true", Username: "u", Password: "dest-password"})
	must(t, err)
	tok, err := e.owner.CreateLinkToken(ctx, orgID, api.LinkTokenRequest{AccessListIPs: []string{}})
	must(t, err)
	e.linkToken = tok.LinkToken
	e.secret("linkToken", tok.LinkToken)
	claims, err := client.ParseLinkToken(tok.LinkToken)
	must(t, err)
	e.secret("linkSecret", claims.Secret)
	agent, reg, err := client.RegisterAgent(ctx, tok.LinkToken, "host-a", "v1.0.0", client.WithHTTPClient(&http.Client{Transport: e.rec}))
	must(t, err)
	e.agent, e.agentID = agent, reg.AgentID
	e.secret("agentSecret", reg.AgentSecret)
	must(t, agent.ReportDeployments(ctx, []api.Deployment{{Name: "rs0", MongoDBVersion: "7.0.14", FeatureCompatibilityVersion: "7.0", DBSizeBytes: 1 << 20, OplogSizeMB: 990}}))
	avail, err := e.owner.AvailableProjects(ctx, orgID)
	must(t, err)
	e.sourceGroupID = avail[0].ProjectID
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) request() api.MigrationRequest {
	return api.MigrationRequest{
		Source:         api.MigrationSource{ClusterName: "rs0", GroupID: e.sourceGroupID, Username: "src", Password: "source-password"},
		Destination:    api.MigrationDestination{ClusterName: "dest", GroupID: e.groupID, HostnameSchemaType: api.HostnamePublic},
		MigrationHosts: []string{"host-a"},
	}
}

var (
	hexID      = regexp.MustCompile(`\b[0-9a-f]{24}\b`)
	downtimeRE = regexp.MustCompile(`"(downtime|other)Seconds": [0-9.e+-]+`)
	rfcTime    = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	hostRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	csrfRE     = regexp.MustCompile(`"(csrfToken|publicKey|privateKey)": "[^"]*"`)
)

// normalize makes an exchange deterministic: secrets, IDs, times, ports.
func (e *env) normalize(s string, ids map[string]string) string {
	for i, v := range e.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "<"+e.names[i]+">")
		}
	}
	s = hostRE.ReplaceAllString(s, "<host>")
	s = csrfRE.ReplaceAllString(s, `"$1": "<$1>"`)
	s = rfcTime.ReplaceAllString(s, "<time>")
	s = downtimeRE.ReplaceAllString(s, `"${1}Seconds": "<seconds>"`) // measured by the control plane
	return hexID.ReplaceAllStringFunc(s, func(id string) string {
		if n, ok := ids[id]; ok {
			return n
		}
		name := fmt.Sprintf("<id-%d>", len(ids)+1)
		switch id {
		case e.orgID:
			name = "<orgId>"
		case e.groupID:
			name = "<groupId>"
		case e.sourceGroupID:
			name = "<sourceGroupId>"
		case e.agentID:
			name = "<agentId>"
		}
		ids[id] = name
		return name
	})
}

func indentJSON(b []byte) string {
	if len(bytes.TrimSpace(b)) == 0 {
		return "(empty)"
	}
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

// golden compares the last exchange with testdata/<name>.golden.
func (e *env) golden(name string) {
	e.t.Helper()
	x := e.rec.last()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", x.method, x.path)
	if x.reqType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\n", x.reqType)
	}
	if len(x.reqBody) > 0 {
		fmt.Fprintf(&b, "%s\n", indentJSON(x.reqBody))
	}
	fmt.Fprintf(&b, "\n%d %s\n", x.status, http.StatusText(x.status))
	if x.respType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\n", x.respType)
	}
	fmt.Fprintf(&b, "%s\n", strings.TrimRight(indentJSON(x.respBody), "\n"))
	got := e.normalize(b.String(), map[string]string{})
	path := filepath.Join("testdata", name+".golden")
	if *update {
		must(e.t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		e.t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// raw sends a request with Basic credentials (user may be empty: none).
func (e *env) raw(method, path, user, pass string, body []byte) (int, api.ErrorEnvelope) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.hs.URL+path, rd)
	must(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case user == "bearer":
		req.Header.Set("Authorization", "Bearer "+pass)
	case user != "":
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	var env api.ErrorEnvelope
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &env)
	return resp.StatusCode, env
}
