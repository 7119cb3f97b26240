package mongotest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Backend is the storage FerretDB runs on.
type Backend string

// Backends FerretDB v1.24 supports here.
const (
	SQLite     Backend = "sqlite"
	PostgreSQL Backend = "postgresql"
)

// Credentials is a SCRAM user.
type Credentials struct {
	User, Password string
}

// Options configures a server. The zero value is a standalone SQLite server
// with no oplog, no authentication and no TLS.
type Options struct {
	// ReplSet is the replica-set name `hello` reports ("" = standalone).
	ReplSet string
	// Oplog, when > 0, creates local.oplog.rs capped at this many entries.
	Oplog int
	// CappedCleanup is how often capped collections are trimmed (default 2s).
	CappedCleanup time.Duration
	// Auth enables SCRAM authentication and creates this user.
	Auth *Credentials
	// TLS serves TLS only, with a CA and certificate generated into the data dir.
	TLS bool
	// Backend is SQLite (default) or PostgreSQL (a private cluster is started).
	Backend Backend
	// Dir holds the server's data, certificates and log; required for Start.
	Dir string
	// Debug serves FerretDB's debug handler (pprof, metrics) on a loopback
	// port (DebugAddr); off by default.
	Debug bool
}

// Server is a FerretDB process.
type Server struct {
	opts Options
	bin  string
	port int
	dbg  int // debug handler port (Options.Debug)
	tls  *TLSFiles
	pg   *Postgres

	mu     sync.Mutex // guards cmd and exited
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start builds (once) and starts a FerretDB process with opts, waits until it
// answers ping, and creates the oplog and user asked for.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("mongotest: Options.Dir is required")
	}
	if opts.CappedCleanup == 0 {
		opts.CappedCleanup = 2 * time.Second
	}
	if opts.Backend == "" {
		opts.Backend = SQLite
	}
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "data"), 0o755); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, bin: bin}
	if err := s.pickPorts(); err != nil {
		return nil, err
	}
	if opts.TLS {
		if s.tls, err = GenerateTLS(filepath.Join(opts.Dir, "tls")); err != nil {
			return nil, err
		}
	}
	if opts.Backend == PostgreSQL {
		if s.pg, err = StartPostgres(ctx, filepath.Join(opts.Dir, "pg")); err != nil {
			return nil, err
		}
	}
	// A free port is free only until another process binds it: when
	// the server lost that race it is started again on other ports.
	for attempt := 1; ; attempt++ {
		err := s.start(ctx)
		if err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(s.LogTail(4096), "address already in use") {
			s.Close()
			return nil, err
		}
		if err := s.pickPorts(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.setup(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) args() []string {
	a := []string{
		"--handler=" + string(s.opts.Backend),
		"--state-dir=" + s.opts.Dir,
		"--telemetry=disable",
		"--log-level=warn",
		"--test-capped-cleanup-interval=" + s.opts.CappedCleanup.String(),
	}
	switch s.opts.Backend {
	case PostgreSQL:
		a = append(a, "--postgresql-url="+s.pg.URL("ferretdb"))
	default:
		a = append(a, "--sqlite-url=file:"+filepath.Join(s.opts.Dir, "data")+"/")
	}
	if s.dbg > 0 {
		a = append(a, "--debug-addr=127.0.0.1:"+strconv.Itoa(s.dbg))
	} else {
		a = append(a, "--debug-addr=-")
	}
	addr := "127.0.0.1:" + strconv.Itoa(s.port)
	if s.tls != nil {
		a = append(a, "--listen-addr=", "--listen-tls="+addr,
			"--listen-tls-cert-file="+s.tls.ServerCert, "--listen-tls-key-file="+s.tls.ServerKey)
	} else {
		a = append(a, "--listen-addr="+addr)
	}
	if s.opts.ReplSet != "" {
		a = append(a, "--repl-set-name="+s.opts.ReplSet)
	}
	if s.opts.Auth != nil {
		a = append(a, "--test-enable-new-auth",
			"--setup-database=admin", "--setup-username="+s.opts.Auth.User, "--setup-password="+s.opts.Auth.Password)
	}
	return a
}

func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(s.bin, s.args()...)
	// The child writes straight into a file: a pipe would tie the server's
	// life to a copying goroutine of ours (SIGPIPE when it ends).
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child keeps its own descriptor
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ferretdb: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("ferretdb exited at start; log tail:\n%s", s.LogTail(4096))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if err := s.ping(ctx); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("ferretdb on port %d not answering after 60s: %w", s.port, err)
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	conn.Close()
	c, err := s.Connect(ctx)
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.Database("admin").RunCommand(pctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

// setup creates the oplog on a fresh server.
func (s *Server) setup(ctx context.Context) error {
	if s.opts.Oplog <= 0 {
		return nil
	}
	c, err := s.Connect(ctx)
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	err = c.Database("local").CreateCollection(ctx, "oplog.rs",
		options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<30).SetMaxDocuments(int64(s.opts.Oplog)))
	if err != nil {
		return fmt.Errorf("create local.oplog.rs: %w", err)
	}
	return nil
}

// LogTail returns the last n bytes of the server's log file.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-n):])
}

func (s *Server) logPath() string { return filepath.Join(s.opts.Dir, "ferretdb.log") }

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// DebugAddr is host:port of FerretDB's debug handler (/debug/pprof/…), or ""
// without Options.Debug.
func (s *Server) DebugAddr() string {
	if s.dbg == 0 {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(s.dbg)
}

// PID is the server process's id (0 when it is not running).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.opts.Dir }

// TLSFiles returns the generated certificates, or nil without TLS.
func (s *Server) TLSFiles() *TLSFiles { return s.tls }

// URI is a connection string for the server with its credentials and TLS
// settings (directConnection, so it also works through a proxy).
func (s *Server) URI() string { return s.URIFor(s.Addr()) }

// URIFor is URI with another host:port, e.g. a proxy's.
func (s *Server) URIFor(addr string) string {
	u := url.URL{Scheme: "mongodb", Host: addr, Path: "/"}
	q := url.Values{}
	q.Set("directConnection", "true")
	if s.opts.Auth != nil {
		u.User = url.UserPassword(s.opts.Auth.User, s.opts.Auth.Password)
		q.Set("authSource", "admin")
	}
	if s.tls != nil {
		q.Set("tls", "true")
		q.Set("tlsCAFile", s.tls.CA)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Connect returns a driver client for the server.
func (s *Server) Connect(ctx context.Context) (*mongo.Client, error) {
	return mongo.Connect(options.Client().ApplyURI(s.URI()).
		SetServerSelectionTimeout(10 * time.Second).SetConnectTimeout(5 * time.Second))
}

// Kill sends SIGKILL to the server and waits until it is gone.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL) }

// Stop asks the server to shut down (SIGTERM) and waits.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal ferretdb: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return errors.New("ferretdb did not stop within 30s; killed")
	}
}

// Restart starts the server again on the same port and data directory. Call
// it after Kill or Stop.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// RestartTrimmingEvery is Restart with capped collections trimmed every d
// from now on (Options.CappedCleanup).
func (s *Server) RestartTrimmingEvery(ctx context.Context, d time.Duration) error {
	s.opts.CappedCleanup = d
	return s.Restart(ctx)
}

// Close stops the server and the PostgreSQL cluster behind it, if any.
func (s *Server) Close() {
	_ = s.Stop()
	if s.pg != nil {
		s.pg.Stop()
	}
}

// pickPorts chooses the server's listening port (and debug port).
func (s *Server) pickPorts() (err error) {
	if s.port, err = freePort(); err != nil {
		return err
	}
	if s.opts.Debug {
		s.dbg, err = freePort()
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
