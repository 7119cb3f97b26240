package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// The -update flag rewrites golden files. It is registered only when no other
// test file of this package did.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata/")
	}
}

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// cpEnv is a real control plane (in-process, SQLite file in a temp dir)
// with an owner API key, a destination cluster "dest", and a registered
// agent "host-a" reporting source deployment "rs0"; and a CLI config file
// whose default profile points at it.
type cpEnv struct {
	t                             *testing.T
	url                           string
	orgID, groupID, sourceGroupID string
	publicKey, privateKey         string
	agent                         *client.Client
	owner                         *client.Client
	config                        string
}

func startControlPlane(t *testing.T) *cpEnv {
	t.Helper()
	return startControlPlaneWith(t, controlplane.Timing{})
}

func startControlPlaneWith(t *testing.T, timing controlplane.Timing) *cpEnv {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	hs := httptest.NewUnstartedServer(nil)
	srv, err := controlplane.New(ctx, controlplane.Options{
		DataPath: filepath.Join(dir, "cp.db"), Key: bytes.Repeat([]byte{9}, controlplane.KeySize),
		ExternalURL: "http://" + hs.Listener.Addr().String(), Logger: slog.New(slog.DiscardHandler), Timing: timing,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	t.Cleanup(func() {
		hs.Close()
		stop()
		<-done
		srv.Close()
	})
	_, _, orgID, err := srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: "root", Password: "root-password"})
	cliMust(t, err)
	admin := client.New(hs.URL, client.BasicAuth("root", "root-password"))
	projects, err := admin.Projects(ctx)
	cliMust(t, err)
	key, err := admin.CreateAPIKey(ctx, orgID, api.APIKeyRequest{Desc: "cli", Roles: []api.Role{{OrgID: orgID, RoleName: api.RoleOrgOwner}}})
	cliMust(t, err)
	e := &cpEnv{t: t, url: hs.URL, orgID: orgID, groupID: projects[0].ID, publicKey: key.PublicKey, privateKey: key.PrivateKey,
		config: filepath.Join(dir, "cli", "config.json")}
	e.owner = client.New(hs.URL, client.BasicAuth(key.PublicKey, key.PrivateKey))
	_, err = e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: "dest", ConnectionString: "mongodb://127.0.0.1:1/"})
	cliMust(t, err)
	tok, err := e.owner.CreateLinkToken(ctx, orgID, api.LinkTokenRequest{})
	cliMust(t, err)
	e.agent, _, err = client.RegisterAgent(ctx, tok.LinkToken, "host-a", "v1.0.0")
	cliMust(t, err)
	cliMust(t, e.agent.ReportDeployments(ctx, []api.Deployment{{Name: "rs0", MongoDBVersion: "7.0.14", FeatureCompatibilityVersion: "7.0"}}))
	avail, err := e.owner.AvailableProjects(ctx, orgID)
	cliMust(t, err)
	e.sourceGroupID = avail[0].ProjectID
	// The default profile, written by the CLI itself.
	for _, kv := range [][2]string{{"base_url", hs.URL}, {"public_api_key", key.PublicKey}, {"private_api_key", key.PrivateKey}} {
		if r := e.run("", "config", "set", kv[0], "--", kv[1]); r.code != 0 { // keys may start with "-"
			t.Fatalf("config set %s: exit %d: %s", kv[0], r.code, r.stderr)
		}
	}
	return e
}

func cliMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cliResult is one run of the CLI.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

// run runs the CLI in-process with the env's config file and stdin.
func (e *cpEnv) run(stdin string, args ...string) cliResult {
	e.t.Helper()
	return e.runWith(strings.NewReader(stdin), &mongotest.LockedBuffer{}, args...)
}

func (e *cpEnv) runWith(stdin io.Reader, stderr *mongotest.LockedBuffer, args ...string) cliResult {
	var stdout mongotest.LockedBuffer
	// --config goes before a "--" that ends the flags.
	i := len(args)
	for j, a := range args {
		if a == "--" {
			i = j
			break
		}
	}
	full := append(append(append([]string{}, args[:i]...), "--config", e.config), args[i:]...)
	code := run(full, stdin, &stdout, stderr)
	return cliResult{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

var (
	cliHexID    = regexp.MustCompile(`\b[0-9a-f]{24}\b`)
	cliIDCell   = regexp.MustCompile(`\b([0-9a-f]{24})\b( *)`)
	cliDowntime = regexp.MustCompile(`(DOWNTIME +|  OTHER +|"downtimeSeconds": |"otherSeconds": )[0-9.e+-]+(ms|s)?`)
	cliTime     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	cliHost     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	cliToken    = regexp.MustCompile(`[A-Za-z0-9_-]{80,}`)
	cliTmpDir   = regexp.MustCompile(`/[^\s"()]*\.json`)
)

// normalize makes output deterministic: known IDs by name, other IDs
// numbered in order of appearance, times, ports, tokens, temp paths.
func (e *cpEnv) normalize(s string) string {
	s = strings.ReplaceAll(s, e.privateKey, "<privateKey>")
	s = strings.ReplaceAll(s, e.publicKey, "<publicKey>")
	s = cliToken.ReplaceAllString(s, "<linkToken>")
	s = cliHost.ReplaceAllString(s, "<host>")
	s = cliTime.ReplaceAllString(s, "<time>")
	s = cliDowntime.ReplaceAllString(s, "$1<downtime>") // measured by the control plane
	s = cliTmpDir.ReplaceAllString(s, "<config>")
	ids := map[string]string{e.orgID: "<orgId>", e.groupID: "<projectId>", e.sourceGroupID: "<sourceProjectId>"}
	n := 0
	return cliIDCell.ReplaceAllStringFunc(s, func(m string) string {
		id, pad := m[:24], m[24:]
		name, ok := ids[id]
		if !ok {
			n++
			name = fmt.Sprintf("<id-%d>", n)
			ids[id] = name
		}
		if len(pad) >= 2 { // a table cell: keep the columns aligned
			pad = strings.Repeat(" ", max(2, len(id)+len(pad)-len(name)))
		}
		return name + pad
	})
}

// golden compares runs with testdata/<name>.golden (rewritten with -update).
func (e *cpEnv) golden(name string, runs ...cliResult) {
	e.t.Helper()
	var b strings.Builder
	for i, r := range runs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "$ livemigrate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
	}
	got := e.normalize(b.String())
	path := filepath.Join("testdata", name+".golden")
	if updatingGolden() {
		cliMust(e.t, os.MkdirAll("testdata", 0o755))
		cliMust(e.t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatalf("%v (run go test -run %s -update to create it)", err, e.t.Name())
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		e.t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// wantExit fails the test unless r exited with code.
func wantExit(t *testing.T, r cliResult, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("livemigrate %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
}
