package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/controlplane/cptest"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/web"
)

// chromiumPath finds the browser: $LIVEMIGRATE_CHROMIUM, then chromium on PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LIVEMIGRATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "browser tests need chromium (apt-get install chromium, or set LIVEMIGRATE_CHROMIUM)"
	if os.Getenv("LIVEMIGRATE_REQUIRE_ALL") != "" {
		t.Fatal(msg + "; LIVEMIGRATE_REQUIRE_ALL is set, so a missing browser fails the test")
	}
	t.Skip(msg + "; skipping")
	return ""
}

// artifactsDir is where screenshots go: $LIVEMIGRATE_ARTIFACTS/ui or
// <repo>/artifacts/ui (gitignored).
func artifactsDir(t *testing.T, test string) string {
	t.Helper()
	base := os.Getenv("LIVEMIGRATE_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", "..", "artifacts")
	}
	dir := filepath.Join(base, "ui", test)
	_ = os.RemoveAll(dir) // screenshots of an earlier run
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless chromium tab plus the JavaScript errors it threw.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
	shot int

	mu     sync.Mutex
	errors []string
}

// newBrowser starts headless chromium with a fresh profile for base.
func newBrowser(t *testing.T, base string, width, height int) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base, dir: artifactsDir(t, t.Name())}
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	// Collect uncaught exceptions and console.error calls of the page; any
	// of them fails the test. (Network errors the browser logs by itself,
	// such as an expected 401, have a Source and are not counted.)
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "") {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		wg.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errors {
			t.Errorf("JavaScript error in the page: %s", e)
		}
	})
	return b
}

// do runs actions with a timeout, failing the test with a screenshot and
// the page's text.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

func (b *browser) fail(what string, err error) {
	b.t.Helper()
	b.screenshot("FAILED-" + strings.ReplaceAll(what, " ", "-"))
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	main, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, main)
}

// screenshot writes a full-page PNG named NN-name.png to the artifacts dir.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.shot++
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	if err := os.WriteFile(p, img, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// open navigates to a hash route.
func (b *browser) open(route string) {
	b.t.Helper()
	b.do("open "+route, chromedp.Navigate(b.base+"/#"+route))
}

// js evaluates a JavaScript expression and returns its value.
func js[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

// waitText waits until the first element matching sel contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.PollFunction[chromedp.Void](`(sel, want) => { const e = document.querySelector(sel); return !!e && e.textContent.includes(want); }`,
		chromedp.WithPollingArgs(sel, want), chromedp.WithPollingInterval(100*time.Millisecond))
}

// waitJS waits until the JavaScript expression is truthy.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond))
}

// clearField empties the form control sel.
func clearField(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.PollFunction[chromedp.Void](`(sel) => { const e = document.querySelector(sel); if (!e) return false; e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); return true; }`,
		chromedp.WithPollingArgs(sel), chromedp.WithPollingInterval(100*time.Millisecond))
}

// setField sets the value of a form control and fires input and change,
// as a user's edit would.
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.PollFunction[chromedp.Void](`(sel, v) => { const e = document.querySelector(sel); if (!e) return false; e.value = v;
		e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return true; }`,
		chromedp.WithPollingArgs(sel, value), chromedp.WithPollingInterval(100*time.Millisecond))
}

// click waits for sel to be visible and enabled and clicks it.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.WaitEnabled(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// text reads the text of the first element matching sel, once it exists.
// The query and the read are one evaluation: the pages re-render their
// stats on every poll, and a query-then-read (chromedp.Text) can land on a
// node that was replaced in between ("No node with given id").
func (b *browser) text(sel string) string {
	b.t.Helper()
	q, err := json.Marshal(sel)
	if err != nil {
		b.t.Fatal(err)
	}
	b.do("find "+sel, waitJS(`!!document.querySelector(`+string(q)+`)`))
	// As chromedp.Text: the visible text, "" for an element without layout.
	return js[string](b, `(e => e.offsetWidth || e.offsetHeight || e.getClientRects().length ? e.innerText : '')(document.querySelector(`+string(q)+`))`)
}

// signIn fills and submits the sign-in form.
func (b *browser) signIn(user, password string) {
	b.t.Helper()
	b.do("sign in as "+user,
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		clearField(`input[name=username]`),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		clearField(`input[name=password]`),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
}

// controlPlane is a real control plane serving the embedded UI.
type controlPlane struct {
	srv   *controlplane.Server
	hs    *httptest.Server
	url   string
	orgID string
	admin *client.Client
}

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Buffer.Write(p)
}

// startControlPlane starts a control plane with the UI on a fresh store; the
// first owner is "owner" / "owner-password".
func startControlPlane(t *testing.T, timing controlplane.Timing) *controlPlane {
	t.Helper()
	ctx := t.Context()
	cp := &controlPlane{}
	var handler syncHandler
	cp.hs = httptest.NewServer(&handler)
	cp.url = cp.hs.URL
	srv, err := controlplane.New(ctx, controlplane.Options{
		DataPath: filepath.Join(t.TempDir(), "cp.db"), Key: bytes.Repeat([]byte{9}, controlplane.KeySize),
		ExternalURL: cp.url, Timing: timing, UI: web.Handler(),
		Logger: slog.New(slog.NewTextHandler(&lockedBuffer{}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	cp.srv = srv
	handler.set(srv.Handler())
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	t.Cleanup(func() {
		cp.hs.Close()
		stop()
		<-done
		srv.Close()
	})
	_, _, orgID, err := srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: "owner", Password: "owner-password"})
	if err != nil {
		t.Fatal(err)
	}
	cp.orgID = orgID
	cp.admin = client.New(cp.url, client.BasicAuth("owner", "owner-password"))
	return cp
}

// project returns the bootstrap organization's first project.
func (cp *controlPlane) project(t *testing.T) api.Project {
	t.Helper()
	ps, err := cp.admin.Projects(t.Context())
	if err != nil || len(ps) == 0 {
		t.Fatalf("list projects: %v (%d)", err, len(ps))
	}
	return ps[0]
}

// syncHandler lets the test server start before the control plane exists
// (the control plane needs the server's URL for link tokens).
type syncHandler struct{ h atomic.Pointer[http.Handler] }

func (s *syncHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *syncHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// runAgent runs the real agent until the returned stop (or the test's end).
func runAgent(t *testing.T, token, host string, sources ...agent.Source) (stop func()) {
	t.Helper()
	return cptest.RunAgent(t, agent.Options{LinkToken: token, Hostname: host, Sources: sources, Version: "v0.0.0-test",
		ProgressInterval: 300 * time.Millisecond})
}

// hostedMigration is a migration a real agent runs: 100 documents in
// shop.orders of the source "rs0" go to "dest-cluster" through
// "migration-host-1".
type hostedMigration struct {
	proj   api.Project
	m      api.Migration
	dst    *mongotest.Server
	token  string       // the link token the agent registered with
	source agent.Source // the agent's source, to restart it with
	stop   func()       // stops the agent
}

// startHostedMigration seeds a source, registers the destination, runs an
// agent with a new link token until it reports the source and creates the
// migration.
func startHostedMigration(t *testing.T, cp *controlPlane) hostedMigration {
	t.Helper()
	ctx := t.Context()
	src := mongotest.StartSource(t)
	h := hostedMigration{proj: cp.project(t), dst: mongotest.StartDestination(t)}
	var docs []any
	for i := range 100 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
	}
	if _, err := mongotest.Client(t, src).Database("shop").Collection("orders").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.admin.CreateCluster(ctx, h.proj.ID, api.ClusterRequest{Name: "dest-cluster", ConnectionString: h.dst.URI()}); err != nil {
		t.Fatal(err)
	}
	owner := cptest.Attach(t, cp.url, cp.admin)
	h.token, h.source = owner.LinkToken, agent.Source{Name: "rs0", URI: mdb.URI(src.URI())}
	h.stop = runAgent(t, h.token, "migration-host-1", h.source)
	owner.WaitDeployment(t, "rs0")
	m, err := cp.admin.CreateMigration(ctx, h.proj.ID, owner.Request("migration-host-1", "rs0", "dest-cluster"))
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}
