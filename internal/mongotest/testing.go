package mongotest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Option adjusts the Options of a test server.
type Option func(*Options)

// WithAuth enables SCRAM authentication with this user.
func WithAuth(user, password string) Option {
	return func(o *Options) { o.Auth = &Credentials{User: user, Password: password} }
}

// WithTLS serves TLS only, with generated certificates (see Server.TLSFiles).
func WithTLS() Option { return func(o *Options) { o.TLS = true } }

// WithPostgreSQL runs the server on a private PostgreSQL cluster; the test is
// skipped with a clear message when PostgreSQL is not installed.
func WithPostgreSQL() Option { return func(o *Options) { o.Backend = PostgreSQL } }

// WithOplog sets the oplog's maximum number of entries.
func WithOplog(max int) Option { return func(o *Options) { o.Oplog = max } }

// Standalone drops the replica-set name (a source the engine must refuse).
func Standalone() Option { return func(o *Options) { o.ReplSet = "" } }

// DefaultOplog is the oplog size test sources get.
const DefaultOplog = 50_000

// StartSource starts a server that behaves as replica set "rs0" with an oplog.
func StartSource(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return StartServer(t, append([]Option{func(o *Options) { o.ReplSet = "rs0"; o.Oplog = DefaultOplog }}, opts...)...)
}

// StartDestination starts a server without an oplog.
func StartDestination(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return StartServer(t, opts...)
}

// StartServer starts a server with opts in a test temp directory, stopped
// when the test ends.
func StartServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := Options{Dir: t.TempDir()}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := Start(ctx, o)
	if errors.Is(err, ErrNoPostgres) {
		if os.Getenv("LIVEMIGRATE_REQUIRE_ALL") != "" {
			t.Fatalf("PostgreSQL-backed test cannot run (LIVEMIGRATE_REQUIRE_ALL is set): %v", err)
		}
		t.Skipf("skipping PostgreSQL-backed test: %v", err)
	}
	if err != nil {
		t.Fatalf("start ferretdb: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Client connects to s and disconnects when the test ends.
func Client(t testing.TB, s *Server) *mongo.Client {
	t.Helper()
	c, err := s.Connect(context.Background())
	if err != nil {
		t.Fatalf("connect %s: %v", s.Addr(), err)
	}
	if err := c.Ping(context.Background(), nil); err != nil {
		t.Fatalf("ping %s: %v\nserver log tail:\n%s", s.Addr(), err, s.LogTail(4096))
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// WaitFor polls cond every 50 ms until it holds, failing the test when d
// passes first.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	WaitForErr(t, what, d, func() (bool, error) { return cond(), nil })
}

// WaitForErr is WaitFor with a condition that can fail: an error fails
// the test at once.
func WaitForErr(t testing.TB, what string, d time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LockedBuffer is a buffer that goroutines (a logger, a child process's
// output) write while the test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
