// Package e2e drives the real livemigrate binary end to end: the demo, a
// control plane and agents as separate processes killed and restarted, and
// validation failures as the operator sees them.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane/cptest"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// binary is the livemigrate binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "livemigrate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "livemigrate")
	build := exec.Command("go", "build", "-o", binary, "github.com/livemigrate/livemigrate/cmd/livemigrate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build livemigrate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a livemigrate process whose output goes to a log file.
type proc struct {
	t    *testing.T
	name string
	args []string
	env  []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	p.start()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s log tail:\n%s", name, p.tail(3000))
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(binary, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// restart kills the process with sig and starts it again with the same arguments.
func (p *proc) restart(sig syscall.Signal) {
	p.t.Helper()
	p.signal(sig)
	p.start()
}

func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	return string(b[max(0, len(b)-n):])
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// controlPlane is a `livemigrate server` process and an owner's client.
type controlPlane struct {
	*proc
	*cptest.Owner
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	addr := freeAddr(t)
	data := filepath.Join(t.TempDir(), "cp.db")
	p := startProc(t, "server", []string{"LIVEMIGRATE_OWNER_PASSWORD=e2e-password"},
		"server", "--listen", addr, "--data", data)
	url := "http://" + addr
	admin := client.New(url, client.BasicAuth("admin", "e2e-password"))
	waitUp(t, admin)
	return &controlPlane{proc: p, Owner: cptest.Attach(t, url, admin)}
}

// waitUp waits until the control plane answers its owner.
func waitUp(t *testing.T, admin *client.Client) {
	t.Helper()
	mongotest.WaitForErr(t, "control plane up", 30*time.Second, func() (bool, error) {
		_, err := admin.Orgs(context.Background())
		return err == nil, nil
	})
}

// startAgent runs `livemigrate agent` with the link token in its environment.
func (cp *controlPlane) startAgent(t *testing.T, host string, env []string, args ...string) *proc {
	t.Helper()
	env = append(env, "LIVEMIGRATE_LINK_TOKEN="+cp.LinkToken)
	// One state directory per agent: a restart (same arguments) keeps its credential.
	return startProc(t, "agent-"+host, env, append([]string{"agent", "--hostname", host, "--state-dir", filepath.Join(t.TempDir(), "state")}, args...)...)
}

// runCLI runs the binary to completion and returns its combined output.
func runCLI(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	return runCLIEnv(t, timeout, nil, args...)
}

// runCLIEnv is runCLI with extra environment variables.
func runCLIEnv(t *testing.T, timeout time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// cli runs a CLI command against the control plane as its owner.
func (cp *controlPlane) cli(t *testing.T, args ...string) string {
	t.Helper()
	env := []string{"LIVEMIGRATE_CONFIG=" + filepath.Join(t.TempDir(), "config.json"), "LIVEMIGRATE_BASE_URL=" + cp.URL,
		"LIVEMIGRATE_PUBLIC_API_KEY=admin", "LIVEMIGRATE_PRIVATE_API_KEY=e2e-password", "LIVEMIGRATE_PROJECT_ID=" + cp.GroupID}
	out, err := runCLIEnv(t, time.Minute, env, args...)
	if err != nil {
		t.Errorf("livemigrate %v: %v\n%s", args, err, out)
	}
	return out
}

func hasCheck(checks api.ValidationChecks, name string, status api.CheckStatus, part string) bool {
	for _, c := range checks.Checks {
		if c.Name == name && c.Status == status && strings.Contains(c.Message, part) {
			return true
		}
	}
	return false
}
