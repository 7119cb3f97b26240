package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Timing holds the control plane's durations. Zero fields take the defaults.
type Timing struct {
	CutoverWindow     time.Duration // default 120 h: from first ready to EXPIRED
	Extension         time.Duration // default 24 h: what x-extend adds
	ExpiryWarning     time.Duration // default 24 h: warn this long before expiry
	HeartbeatInterval time.Duration // default 10 s: told to agents at register
	AgentLostAfter    time.Duration // default MissedHeartbeatsLost (3) heartbeat intervals
	ProgressInterval  time.Duration // default 2 s: told to agents at register
	MaxWait           time.Duration // default 30 s: longest work long-poll
	SessionTTL        time.Duration // default 12 h
	// DestinationTimeout bounds each connection and command of the control
	// plane's to a destination (its migration users); default 10 s.
	DestinationTimeout time.Duration
}

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.CutoverWindow, 120*time.Hour)
	def(&t.Extension, 24*time.Hour)
	def(&t.ExpiryWarning, 24*time.Hour)
	def(&t.HeartbeatInterval, 10*time.Second)
	def(&t.AgentLostAfter, MissedHeartbeatsLost*t.HeartbeatInterval)
	def(&t.ProgressInterval, 2*time.Second)
	def(&t.MaxWait, 30*time.Second)
	def(&t.SessionTTL, 12*time.Hour)
	def(&t.DestinationTimeout, 10*time.Second)
	return t
}

// Options configure a Server.
type Options struct {
	// DataPath is the SQLite file; it is created when missing.
	DataPath string
	// Key is the 32-byte secrets key (see LoadKey).
	Key []byte
	// ExternalURL is the base URL agents use to reach this server; it goes
	// into link tokens.
	ExternalURL string
	Logger      *slog.Logger
	Timing      Timing
	// UI, when set, serves every path outside /api and /metrics (the web UI).
	UI http.Handler
	// WebhookClient delivers webhooks; nil means a client with a 10 s timeout.
	WebhookClient *http.Client
	// WebhookAllowPrivate lets webhooks target loopback, link-local and
	// private addresses; by default they are refused at registration and
	// at every connection.
	WebhookAllowPrivate bool
	// TrustedProxies: when true, the agent's address is taken from the first
	// X-Forwarded-For entry for access-list checks.
	TrustProxy bool
	// AuthLimits bound failed credential attempts (throttle.go).
	AuthLimits AuthLimits
	// HashConcurrency caps how many password hashes (PBKDF2) the process
	// computes at once; 0 is half the CPUs (at least 1), negative is no cap.
	// The cap is process-wide: the last New sets it.
	HashConcurrency int
	// SMTP, when set, is the relay email notifications go through (see
	// email.go); nil turns email off.
	SMTP *SMTPConfig
}

// Server is the control plane: Admin API, agent endpoint, timers and webhooks
// over one SQLite store. Handler serves HTTP; Run drives the timers and
// webhook deliveries; Serve does both on a listener with graceful shutdown.
type Server struct {
	opts    Options
	timing  Timing
	logger  *slog.Logger
	store   *store
	sealer  *sealer
	metrics *metrics
	handler http.Handler

	startedAt time.Time
	work      *notifier     // wakes agents' long-polls
	timerWake chan struct{} // wakes the timer loop after a state change
	hookWake  chan struct{} // wakes the webhook loop after an enqueue
	emailWake chan struct{} // wakes the email loop after an enqueue
	userWake  chan struct{} // wakes the destination-user loop (destuser.go)

	// secureCookies: the external URL is https, so the session cookie is
	// Secure even when TLS ends at a proxy in front of this server.
	secureCookies bool

	throttle  throttler // failed-credential limits (throttle.go)
	credMu    sync.Mutex
	credCache map[string]credEntry // verified password logins, by hash of user+password
	digest    digestNonces         // HTTP Digest nonces and their counts
}

type credEntry struct {
	principalID string
	until       time.Time
}

// New opens the store at opts.DataPath, applying schema migrations.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ExternalURL == "" {
		return nil, errors.New("controlplane: ExternalURL is required (it goes into link tokens)")
	}
	opts.ExternalURL = strings.TrimRight(opts.ExternalURL, "/")
	if opts.HashConcurrency != 0 {
		setHashConcurrency(opts.HashConcurrency)
	}
	ext, err := url.Parse(opts.ExternalURL)
	if err != nil || (ext.Scheme != "http" && ext.Scheme != "https") || ext.Host == "" {
		return nil, fmt.Errorf("controlplane: ExternalURL %q: want http://host[:port] or https://host[:port]", opts.ExternalURL)
	}
	if opts.SMTP != nil {
		c := *opts.SMTP
		if err := c.check(); err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		opts.SMTP = &c
	}
	sl, err := newSealer(opts.Key)
	if err != nil {
		return nil, err
	}
	st, fixed, err := openStore(ctx, opts.DataPath)
	if err != nil {
		return nil, err
	}
	for _, f := range fixed {
		opts.Logger.Warn("store file was readable by others; its mode is now 0600", "path", f.path, "was", f.was.String())
	}
	if opts.WebhookClient == nil {
		opts.WebhookClient = newWebhookClient(opts.WebhookAllowPrivate)
	}
	s := &Server{
		opts:          opts,
		timing:        opts.Timing.withDefaults(),
		logger:        opts.Logger.With("component", "controlplane"),
		store:         st,
		sealer:        sl,
		startedAt:     time.Now(),
		work:          newNotifier(),
		timerWake:     make(chan struct{}, 1),
		hookWake:      make(chan struct{}, 1),
		emailWake:     make(chan struct{}, 1),
		userWake:      make(chan struct{}, 1),
		credCache:     map[string]credEntry{},
		secureCookies: ext.Scheme == "https",
	}
	if err := s.checkKey(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := s.resealStored(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("reseal stored secrets: %w", err)
	}
	s.metrics = newMetrics(s)
	s.handler = s.routes()
	return s, nil
}

// Close closes the store. Call it after Run and every request have returned.
func (s *Server) Close() error { return s.store.Close() }

// Handler returns the HTTP handler of the Admin API, the agent endpoint,
// /metrics and, when configured, the UI.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry returns the Prometheus registry that /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

// Run drives the cutover-window and agent-heartbeat timers, the webhook
// deliveries and the destination users' creation and removal until ctx is
// done. It returns nil on cancellation.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.runTimers(ctx) })
	wg.Go(func() { s.runWebhooks(ctx) })
	wg.Go(func() { s.runDestinationUsers(ctx) })
	if s.opts.SMTP != nil {
		wg.Go(func() { s.runEmails(ctx) })
	}
	wg.Wait()
	return nil
}

// Serve serves HTTP on ln and runs the timers until ctx is done, then shuts
// down gracefully: it stops accepting, ends long-polls, waits up to 10 s for
// requests in flight, and stops the timers.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(runCtx) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	s.logger.Info("listening", "addr", ln.Addr().String(), "external_url", s.opts.ExternalURL)
	var err error
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = hs.Shutdown(shutCtx)
		cancel()
		_ = <-serveErr // http.ErrServerClosed after Shutdown
	}
	stopRun()
	wg.Wait()
	s.logger.Info("stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// wake signals a loop's buffered wake channel without blocking: one pending
// wake is as good as many.
func wake(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *Server) kickTimers() { wake(s.timerWake) }

// kickWebhooks wakes the webhook loop, and the email loop: both queue from
// addEvent, so every caller that commits events calls this.
func (s *Server) kickWebhooks() {
	wake(s.hookWake)
	s.kickEmails()
}

// notifier wakes waiters keyed by agent ID.
type notifier struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: map[string]chan struct{}{}} }

// wait returns a channel closed at the next notify(key).
func (n *notifier) wait(key string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.ch[key]
	if !ok {
		c = make(chan struct{})
		n.ch[key] = c
	}
	return c
}

func (n *notifier) notify(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.ch[key]; ok {
		close(c)
		delete(n.ch, key)
	}
}
