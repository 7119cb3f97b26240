package adversary

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// BuildBinary builds the livemigrate command (the package at pkgDir) into dir.
func BuildBinary(ctx context.Context, pkgDir, dir string) (string, error) {
	bin := filepath.Join(dir, "livemigrate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = pkgDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkgDir, err, out)
	}
	return bin, nil
}

// Process is one `livemigrate sync --start` process: the engine, killable
// with SIGKILL, driven over its local API.
type Process struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	err    error // Wait's result, set before exited closes
}

// StartProcess runs `bin sync` from src to dst, its log appended to logPath,
// and waits for its API.
func StartProcess(ctx context.Context, bin, src, dst, logPath string) (*Process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "sync", "--source", src, "--destination", dst, "--listen", "127.0.0.1:0", "--start", "--linger", "30s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	re := regexp.MustCompile(`API on http://([^/]+)/api/v1/`)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(log, out)
		p.err = cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a + "/api/v1/"
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("livemigrate sync exited before serving its API: %v (log %s)", p.err, logPath)
	case <-time.After(60 * time.Second):
		p.Kill()
		return nil, fmt.Errorf("livemigrate sync did not announce its API in 60s (log %s)", logPath)
	case <-ctx.Done():
		p.Kill()
		return nil, ctx.Err()
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.exited:
		return true, p.err
	default:
		return false, nil
	}
}

// State is the API's progress answer.
type State struct {
	Progress migration.Progress `json:"progress"`
	Report   map[string]any     `json:"commitReport"`
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// State reads GET /api/v1/progress.
func (p *Process) State() (State, error) {
	var s State
	resp, err := httpClient.Get(p.base + "progress")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET progress: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Commit posts /api/v1/commit.
func (p *Process) Commit() error {
	resp, err := httpClient.Post(p.base+"commit", "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST commit: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// errFailed is a run that reported FAILED.
var errFailed = errors.New("the engine reported FAILED")

// WaitFor polls progress until cond holds, the engine fails or exits, or d passes.
func (p *Process) WaitFor(ctx context.Context, what string, d time.Duration, cond func(State) bool) (State, error) {
	deadline := time.Now().Add(d)
	for {
		s, err := p.State()
		if err == nil {
			if cond(s) {
				return s, nil
			}
			if s.Progress.State == migration.StateFailed {
				return s, fmt.Errorf("waiting for %s: %w: %s", what, errFailed, s.Progress.Error)
			}
		}
		if done, werr := p.Exited(); done {
			return s, fmt.Errorf("waiting for %s: the engine process exited: %v", what, werr)
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("waiting for %s: timed out after %s (state %s, phase %s, last error %v)", what, d, s.Progress.State, s.Progress.Phase, err)
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
