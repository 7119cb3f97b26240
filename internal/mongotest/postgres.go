package mongotest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoPostgres means the PostgreSQL server binaries are not installed.
var ErrNoPostgres = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql package (.ci/run does)")

// Postgres is a private PostgreSQL cluster on a loopback port.
type Postgres struct {
	dir, bin string
	port     int
	asUser   string // run pg tools as this user when we are root
}

// pgBinDir finds initdb and pg_ctl: Debian puts them under /usr/lib/postgresql/N/bin.
func pgBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", ErrNoPostgres
}

// StartPostgres initializes a cluster in dir and starts it. PostgreSQL refuses
// to run as root, so as root the cluster is owned by and run as "postgres".
func StartPostgres(ctx context.Context, dir string) (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin, port: port}
	if os.Geteuid() == 0 {
		p.asUser = "postgres"
		if _, err := user.Lookup(p.asUser); err != nil {
			return nil, fmt.Errorf("running as root needs the %q user that Debian's postgresql package creates: %w", p.asUser, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if p.asUser != "" {
		// Let the postgres user reach dir through the test's temp directories.
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(d, fi.Mode().Perm()|0o001)
			}
		}
		if out, err := exec.CommandContext(ctx, "chown", "-R", p.asUser, dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown %s: %v: %s", dir, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	if err := p.run(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", port, dir)
	if err := p.run(ctx, "pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		return nil, err
	}
	if err := p.run(ctx, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "ferretdb"); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) run(ctx context.Context, tool string, args ...string) error {
	path := filepath.Join(p.bin, tool)
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s: %w", tool, ErrNoPostgres)
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	if p.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", tool, strings.Join(args, " "), err, out)
	}
	return nil
}

// URL is a connection URL to database db.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s", p.port, db)
}

// Stop shuts the cluster down immediately.
func (p *Postgres) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.run(ctx, "pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop")
}
