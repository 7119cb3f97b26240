package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// storeBytes is the SQLite file and its WAL, as an attacker with the files
// would read them.
func (e *env) storeBytes() []byte {
	var all []byte
	for _, p := range []string{"cp.db", "cp.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(e.dir, p))
		all = append(all, b...)
	}
	return all
}

// noLeak fails when secret is in any response since exchange n, in the
// store files or in the log.
func (e *env) noLeak(n int, secret string) {
	e.t.Helper()
	for _, x := range e.rec.since(n) {
		if bytes.Contains(x.respBody, []byte(secret)) {
			e.t.Errorf("%s %s: the response has secret %q: %s", x.method, x.path, secret, x.respBody)
		}
	}
	if bytes.Contains(e.storeBytes(), []byte(secret)) {
		e.t.Errorf("the store files have secret %q in clear", secret)
	}
	if strings.Contains(e.logs.String(), secret) {
		e.t.Errorf("the log has secret %q", secret)
	}
}

// TestSecretsClusterConnectionString: a password with reserved characters,
// escaped or not, and secret options never come back from the API (to the
// owner or a read-only member) nor sit in clear in the store; what the
// driver would misread is refused with a 400 that does not echo it.
func TestSecretsClusterConnectionString(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	accepted := []struct{ uri, secret string }{
		{"mongodb://alice:pa%2Fss0rd@db1:27017/?replicaSet=rs", "pa/ss0rd"},
		{"mongodb://alice:pa%3Fss1rd@db1:27017/", "pa?ss1rd"},
		{"mongodb://alice:pa%40ss2rd@db1:27017/", "pa@ss2rd"},
		{"mongodb://AKIDEXAMPLE:awsSecretKey99@db1:27017/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:FQoGZXIvYXdzEBoaDsess", "FQoGZXIvYXdzEBoaDsess"},
		{"mongodb://AKIDEXAMPLE:awsSecretKey99@db1:27017/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:FQoGZXIvYXdzEBoaDsess", "awsSecretKey99"},
		{"mongodb://db1:27017/?tls=true&tlsCertificateKeyFile=/etc/k.pem&tlsCertificateKeyFilePassword=keyfilepw", "keyfilepw"},
		{"mongodb://db1:27017/?unknownFutureSecret=opaquevalue", "opaquevalue"},
	}
	for i, tc := range accepted {
		n := e.rec.count()
		name := "c" + strconv.Itoa(i)
		c, err := e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: name, ConnectionString: tc.uri})
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if !strings.HasPrefix(c.ConnectionString, "mongodb://") {
			t.Errorf("%s: shown as %q", tc.uri, c.ConnectionString)
		}
		_, err = e.member.Cluster(ctx, e.groupID, name)
		must(t, err)
		_, err = e.member.Clusters(ctx, e.groupID)
		must(t, err)
		e.noLeak(n, tc.secret)
		// Escaped forms of the password must not leak either.
		e.noLeak(n, strings.NewReplacer("/", "%2F", "?", "%3F", "@", "%40").Replace(tc.secret))
	}
	refused := []struct{ uri, secret string }{
		{"mongodb://alice:pa/ss3rd@db1:27017/", "ss3rd"},
		{"mongodb://alice:pa?ss4rd@db1:27017/", "ss4rd"},
		{"mongodb://alice:pa@ss5rd@db1:27017/", "ss5rd"},
		{"mongodb://alice:pass6rd@db1:27017/?tls=notabool&tlsCertificateKeyFilePassword=kfpw7", "kfpw7"},
		{"mongodb://alice:pass8rd@db1:99999/", "pass8rd"},
		{"not a connection string pass9rd", "pass9rd"},
		{"mongodb://alice:pass10rd@db1:27017/?authMechanismProperties=AWS_SESSION_TOKEN:tok11en@x", "tok11en"},
	}
	for _, tc := range refused {
		n := e.rec.count()
		_, err := e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: "refused", ConnectionString: tc.uri})
		if !isBadRequest(err) {
			t.Errorf("%s: %v, want a 400", tc.uri, err)
			continue
		}
		e.noLeak(n, tc.secret)
	}
}

// TestSecretsAgentText: what an agent reports (validation messages, a
// failure) is stored and shown with the connection strings redacted and the
// request's and destination's secrets removed, also in events.
func TestSecretsAgentText(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, err := e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: "aws",
		ConnectionString: "mongodb://AKID:awsSecret@db1:27017/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:SessTok3n"})
	must(t, err)
	req := e.request()
	req.Destination.ClusterName = "aws"
	v, err := e.owner.CreateValidation(ctx, e.groupID, req) // its work waits for a destination user db1 never gets
	must(t, err)
	leaky := "connect mongodb://src:source-password@h:1/?authMechanismProperties=AWS_SESSION_TOKEN:SessTok3n: auth failed for password source-password, token SessTok3n"
	must(t, e.agent.PostValidationResult(ctx, v.ID, api.ValidationResult{Status: api.ValidationFailed, ErrorMessage: leaky,
		Checks: []api.ValidationCheck{{Name: "destination auth", Status: api.CheckFailed, Message: leaky}}}))
	mark := e.rec.count()
	got, err := e.owner.Validation(ctx, e.groupID, v.ID)
	must(t, err)
	_, err = e.owner.ValidationChecks(ctx, e.groupID, v.ID)
	must(t, err)
	if !strings.Contains(got.ErrorMessage, "auth failed") {
		t.Errorf("errorMessage lost its text: %q", got.ErrorMessage)
	}
	for _, x := range e.rec.since(mark) {
		for _, s := range []string{"source-password", "SessTok3n"} {
			if bytes.Contains(x.respBody, []byte(s)) {
				t.Errorf("%s %s has %q: %s", x.method, x.path, s, x.respBody)
			}
		}
	}
	// A failed migration's error becomes an event.
	m, err := e.owner.CreateMigration(ctx, e.groupID, req)
	must(t, err)
	items, err := e.agent.PollWork(ctx, 0)
	must(t, err)
	for _, it := range items {
		must(t, e.agent.AckWork(ctx, it.ID))
	}
	_, err = e.agent.PostProgress(ctx, m.ID, api.Progress{State: api.StateFailed, Error: leaky})
	must(t, err)
	mark = e.rec.count()
	_, err = e.owner.MigrationEvents(ctx, e.groupID, m.ID)
	must(t, err)
	_, err = e.owner.MigrationProgress(ctx, e.groupID, m.ID)
	must(t, err)
	for _, x := range e.rec.since(mark) {
		for _, s := range []string{"source-password", "SessTok3n"} {
			if bytes.Contains(x.respBody, []byte(s)) {
				t.Errorf("%s %s has %q: %s", x.method, x.path, s, x.respBody)
			}
		}
	}
}

// TestSecretsWebhookCredentials: a webhook URL's user information is sealed,
// never returned, and still used for delivery.
func TestSecretsWebhookCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var mu sync.Mutex
	var gotUser, gotPass string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUser, gotPass, _ = r.BasicAuth()
		mu.Unlock()
	}))
	defer hook.Close()
	target := strings.Replace(hook.URL, "http://", "http://hookuser:HookPassw0rd@", 1) + "/x?token=QueryT0ken"
	n := e.rec.count()
	wh, err := e.owner.SetWebhook(ctx, e.groupID, api.WebhookRequest{URL: target, Secret: "sig-secret"})
	must(t, err)
	if strings.Contains(wh.URL, "hookuser") {
		t.Errorf("webhook shown as %q", wh.URL)
	}
	_, err = e.member.Webhook(ctx, e.groupID)
	must(t, err)
	e.noLeak(n, "HookPassw0rd")
	e.noLeak(n, "QueryT0ken")
	// A migration event is delivered with the credentials.
	m, err := e.owner.CreateMigration(ctx, e.groupID, e.request())
	must(t, err)
	_, err = e.agent.PostProgress(ctx, m.ID, api.Progress{State: api.StateFailed, Error: "boom"})
	must(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		u, p := gotUser, gotPass
		mu.Unlock()
		if u != "" {
			if u != "hookuser" || p != "HookPassw0rd" {
				t.Fatalf("delivered with %q/%q", u, p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSecretsWebhookTargets: without WebhookAllowPrivate, webhooks to
// loopback, link-local, metadata and private addresses are refused at
// registration.
func TestSecretsWebhookTargets(t *testing.T) {
	s := startSmall(t, t.TempDir(), "http://cp.test", bytes.Repeat([]byte{3}, controlplane.KeySize), nil)
	for _, u := range []string{
		"http://127.0.0.1:8080/h", "http://localhost/h", "http://[::1]/h", "http://169.254.169.254/latest/meta-data",
		"http://[fe80::1]/h", "http://10.1.2.3/h", "http://192.168.0.1/h", "http://172.16.0.1/h", "http://100.64.0.1/h",
		"http://metadata.google.internal/computeMetadata/v1/", "http://0.0.0.0/h", "http://[::ffff:127.0.0.1]/h",
		"ftp://example.com/h", "http://exa\u202emple.com/h", "http://example.com/\x00",
	} {
		status, body := s.put("/api/atlas/v2/groups/"+s.groupID+"/integrations/WEBHOOK", api.WebhookRequest{URL: u})
		if status != http.StatusBadRequest {
			t.Errorf("webhook %q: %d %s, want 400", u, status, body)
		}
	}
	status, body := s.put("/api/atlas/v2/groups/"+s.groupID+"/integrations/WEBHOOK", api.WebhookRequest{URL: "https://203.0.113.7/h"})
	if status != http.StatusOK {
		t.Errorf("public webhook: %d %s", status, body)
	}
}

// TestSecretsInputLimits: names, hostnames and URIs with NUL, bidi
// overrides or excessive length are refused with a 400 naming the field.
func TestSecretsInputLimits(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, name := range []string{"a\x00b", "invoice\u202egpj.exe", strings.Repeat("n", 65), " padded", "zero\u200bwidth"} {
		if _, err := e.owner.CreateProject(ctx, e.orgID, name); !isBadRequest(err) {
			t.Errorf("project %q: %v, want a 400", name, err)
		}
		if _, err := e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: name, ConnectionString: "mongodb://db1/"}); !isBadRequest(err) {
			t.Errorf("cluster %q: %v, want a 400", name, err)
		}
	}
	for _, uri := range []string{"mongodb://db1/\x00", "mongodb://" + strings.Repeat("h", 5000) + "/", "mongodb://db\u202e1/", "mongodb://", ""} {
		if _, err := e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: "u", ConnectionString: uri}); !isBadRequest(err) {
			t.Errorf("connection string %q: %v, want a 400", uri, err)
		}
	}
	for _, host := range []string{"host\x00a", "host\u202ea", strings.Repeat("h", 300), "host a"} {
		_, _, err := client.RegisterAgent(ctx, e.linkToken, host, "v1")
		if !isBadRequest(err) {
			t.Errorf("agent hostname %q: %v, want a 400", host, err)
		}
	}
	// A huge waitSeconds: TestClampSeconds (an end-to-end call would wait
	// the full MaxWait).
}

func isBadRequest(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest
}

// TestSecretsStartupChecks: a loose store file is tightened to 0600 (and
// its WAL and SHM are 0600) and the log says so; a wrong key stops the
// start with a clear error; an https external URL makes the session cookie
// Secure.
func TestSecretsStartupChecks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cp.db")
	must(t, os.WriteFile(path, nil, 0o644))
	must(t, os.Chmod(path, 0o644))
	key := bytes.Repeat([]byte{5}, controlplane.KeySize)
	var logs syncBuffer
	s := startSmall(t, dir, "https://cp.example.com", key, &logs)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	if !strings.Contains(logs.String(), "0600") {
		t.Errorf("no log of the mode change: %s", logs.String())
	}
	// Secure session cookie behind a TLS proxy.
	body, _ := json.Marshal(api.SessionRequest{Username: "root", Password: "root-password"})
	req, _ := http.NewRequest("POST", s.hs.URL+"/api/session", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.hs.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	var secure, found bool
	for _, c := range resp.Cookies() {
		if c.Name == "livemigrate_session" {
			found, secure = true, c.Secure
		}
	}
	if !found || !secure {
		t.Errorf("login %d: session cookie found %v secure %v", resp.StatusCode, found, secure)
	}
	s.stop()
	// The same store with another key.
	_, err = controlplane.New(t.Context(), controlplane.Options{DataPath: path, Key: bytes.Repeat([]byte{6}, controlplane.KeySize), ExternalURL: "http://cp.test"})
	if err == nil || !strings.Contains(err.Error(), "secrets key") {
		t.Fatalf("wrong key: %v, want an error about the secrets key", err)
	}
	// And the right key still opens it.
	srv, err := controlplane.New(t.Context(), controlplane.Options{DataPath: path, Key: key, ExternalURL: "http://cp.test"})
	must(t, err)
	srv.Close()
}

// small is a control plane on a real HTTP server with its admin and first project.
type small struct {
	t       *testing.T
	hs      *httptest.Server
	groupID string
	stop    func()
}

func startSmall(t *testing.T, dir, external string, key []byte, logs io.Writer) *small {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	srv, err := controlplane.New(t.Context(), controlplane.Options{DataPath: filepath.Join(dir, "cp.db"), Key: key, ExternalURL: external,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	var once sync.Once
	s := &small{t: t, hs: hs, stop: func() {
		once.Do(func() { hs.Close(); cancel(); <-done; srv.Close() })
	}}
	t.Cleanup(s.stop)
	_, _, _, err = srv.Bootstrap(t.Context(), controlplane.BootstrapOptions{Username: "root", Password: "root-password"})
	must(t, err)
	projects, err := client.New(hs.URL, client.BasicAuth("root", "root-password")).Projects(t.Context())
	must(t, err)
	s.groupID = projects[0].ID
	return s
}

func (s *small) put(path string, body any) (int, string) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("PUT", s.hs.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("root", "root-password")
	resp, err := http.DefaultClient.Do(req)
	must(s.t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}
