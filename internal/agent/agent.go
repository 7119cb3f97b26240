package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
)

// Options configures an Agent.
type Options struct {
	// LinkToken is the organization's link token (it carries the control
	// plane's URL).
	LinkToken string
	// Hostname identifies this migration host; a restarted agent must use the
	// same one to keep its identity and resume its migrations (default
	// os.Hostname()).
	Hostname string
	// Version is reported at registration.
	Version string
	// StateDir is where the agent keeps its own credential (a file
	// credential-<orgId>-<hostname>.json, mode 0600, in a directory made
	// 0700). A restarted agent registers with it and keeps its identity and
	// migrations; without it (empty: memory only, or a lost file), the
	// registration of a hostname that has a live agent waits for an
	// organization owner's approval.
	StateDir string
	// Sources are the deployments this host can reach.
	Sources []Source
	// MinVersion is an extra minimum MongoDB version for validation (see
	// ValidationOptions.MinVersion).
	MinVersion string
	// ProgressInterval is how often a running migration's progress is posted
	// (default: the control plane's interval, at most 2 s).
	ProgressInterval time.Duration
	// HTTPClient talks to the control plane (default: 60 s timeout, enough
	// for the longest long-poll).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Agent is a migration host. Create it with New and call Run once.
type Agent struct {
	opts    Options
	logger  *slog.Logger
	sources map[string]Source

	regMu sync.Mutex // serializes registrations

	claims api.LinkTokenClaims

	mu   sync.Mutex // guards cl, reg, cred and runs
	cl   *client.Client
	reg  api.AgentRegistration
	cred storedCredential
	runs map[string]*run // running migrations by ID

	wg sync.WaitGroup // validations and migrations in flight
}

// New checks opts.
func New(opts Options) (*Agent, error) {
	claims, err := client.ParseLinkToken(opts.LinkToken)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if opts.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent: hostname: %w", err)
		}
		opts.Hostname = h
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	a := &Agent{opts: opts, claims: claims, logger: opts.Logger.With("component", "agent"), sources: map[string]Source{}, runs: map[string]*run{}}
	for _, s := range opts.Sources {
		if _, dup := a.sources[s.Name]; dup {
			return nil, fmt.Errorf("agent: source %q is configured twice", s.Name)
		}
		a.sources[s.Name] = s
	}
	return a, nil
}

// ErrLinkTokenInvalid is returned by Run when the control plane rejects the
// link token (deleted or replaced): the agent cannot work without a new one.
var ErrLinkTokenInvalid = errors.New("the control plane rejected the link token (deleted or replaced): start the agent with the organization's current link token")

// ErrAgentRevoked is returned by Run when the control plane refuses this
// agent's credential for good: an operator revoked the agent, approved
// another host's registration of this hostname, or rejected this one. The
// wrapped error's message says which and what to do.
var ErrAgentRevoked = errors.New("the control plane no longer accepts this migration host")

// Run registers and serves the control plane until ctx ends or the link
// token is rejected. Migrations it runs stop with ctx (their state is on the
// destination; a restarted agent resumes them).
func (a *Agent) Run(ctx context.Context) error {
	if err := a.loadCredential(); err != nil {
		return err
	}
	if err := a.register(ctx); err != nil {
		return err
	}
	defer a.wg.Wait()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var loops sync.WaitGroup
	loops.Go(func() { a.heartbeats(ctx) })
	loops.Go(func() { a.deploymentReports(ctx) })
	err := a.poll(ctx, cancel)
	cancel(err)
	loops.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if c := context.Cause(ctx); errors.Is(c, ErrLinkTokenInvalid) || errors.Is(c, ErrAgentRevoked) {
		return c
	}
	return nil
}

func (a *Agent) client() *client.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cl
}

// register obtains an agent identity, retrying while the control plane is
// unreachable. It sends the credential this host kept (so a restarted
// agent keeps its identity); a registration held for an operator's
// approval is asked about again until it is decided. The control plane
// re-queues the work of this host's unfinished validations and
// migrations, which is how a restarted agent resumes.
func (a *Agent) register(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	heldLogged := ""
	for {
		req := api.AgentRegisterRequest{LinkToken: a.opts.LinkToken, Hostname: a.opts.Hostname, Version: a.opts.Version, AgentSecret: a.storedSecret()}
		cl, reg, err := client.RegisterAgentWith(ctx, req, client.WithHTTPClient(a.opts.HTTPClient))
		if err == nil && cl != nil {
			if err := a.saveCredential(storedCredential{Status: api.RegistrationActive, AgentID: reg.AgentID, AgentSecret: reg.AgentSecret}); err != nil {
				return fmt.Errorf("register migration host %s: %w", a.opts.Hostname, err)
			}
			a.mu.Lock()
			a.cl, a.reg = cl, reg
			a.mu.Unlock()
			a.logger.Info("registered", "agent_id", reg.AgentID, "hostname", a.opts.Hostname, "control_plane", cl.BaseURL())
			a.reportDeployments(ctx)
			return nil
		}
		if err == nil { // held for an operator's decision
			if err := a.saveCredential(storedCredential{Status: api.RegistrationPending, RegistrationID: reg.RegistrationID, AgentSecret: reg.AgentSecret}); err != nil {
				return fmt.Errorf("register migration host %s: %w", a.opts.Hostname, err)
			}
			if heldLogged != reg.RegistrationID {
				heldLogged = reg.RegistrationID
				a.logger.Warn("registration waits for an operator's approval", "registration_id", reg.RegistrationID, "hostname", a.opts.Hostname, "detail", reg.Detail)
			}
			wait := time.Duration(reg.RetryAfterSeconds) * time.Second
			if wait <= 0 || wait > time.Minute {
				wait = 5 * time.Second
			}
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		var ae *client.APIError
		if errors.As(err, &ae) {
			switch ae.ErrorCode {
			case "AGENT_REVOKED", "AGENT_CREDENTIAL_REPLACED", "AGENT_REGISTRATION_REJECTED":
				return fmt.Errorf("register migration host %s: %w: %s", a.opts.Hostname, ErrAgentRevoked, ae.Detail)
			}
		}
		if client.IsUnauthorized(err) {
			return fmt.Errorf("register migration host %s: %w (%v)", a.opts.Hostname, ErrLinkTokenInvalid, err)
		}
		if errors.As(err, &ae) && ae.StatusCode < 500 && ae.StatusCode != http.StatusTooManyRequests {
			return fmt.Errorf("register migration host %s: %w", a.opts.Hostname, err)
		}
		a.logger.Warn("control plane not reachable; retrying", "err", err, "retry_in", backoff)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// reauth re-registers (with the stored credential) after the control plane
// stopped accepting the agent secret of client used; a revoked or
// replaced credential ends the agent (ErrAgentRevoked). Concurrent callers
// register once.
func (a *Agent) reauth(ctx context.Context, used *client.Client, cause error) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if a.client() != used {
		return nil // someone registered again meanwhile
	}
	a.logger.Warn("agent secret rejected; registering again", "err", cause)
	return a.register(ctx)
}

func (a *Agent) interval(fromServer int, ceiling time.Duration) time.Duration {
	d := time.Duration(fromServer) * time.Second
	if d <= 0 || d > ceiling {
		d = ceiling
	}
	return d
}

func (a *Agent) heartbeats(ctx context.Context) {
	for {
		a.mu.Lock()
		every := a.interval(a.reg.HeartbeatIntervalSeconds, 10*time.Second) / 2
		ids := make([]string, 0, len(a.runs))
		for id := range a.runs {
			ids = append(ids, id)
		}
		a.mu.Unlock()
		if err := sleep(ctx, every); err != nil {
			return
		}
		if err := a.client().Heartbeat(ctx, api.AgentHeartbeat{Migrations: ids}); err != nil && ctx.Err() == nil {
			a.logger.Warn("heartbeat failed", "err", err)
		}
	}
}

func (a *Agent) deploymentReports(ctx context.Context) {
	for sleep(ctx, time.Minute) == nil {
		a.reportDeployments(ctx)
	}
}

// poll long-polls for work until ctx ends or the link token is rejected.
func (a *Agent) poll(ctx context.Context, cancel context.CancelCauseFunc) error {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		a.mu.Lock()
		wait := a.interval(a.reg.MaxWaitSeconds, 30*time.Second)
		a.mu.Unlock()
		cl := a.client()
		items, err := cl.PollWork(ctx, wait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if client.IsUnauthorized(err) {
				if err := a.reauth(ctx, cl, err); err != nil {
					cancel(err)
					return err
				}
				continue
			}
			a.logger.Warn("poll for work failed; retrying", "err", err, "retry_in", backoff)
			if sleep(ctx, backoff) != nil {
				return nil
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		for _, it := range items {
			a.dispatch(ctx, it)
		}
	}
	return nil
}

// dispatch starts what a work item asks for and acknowledges it. Items are
// idempotent: a start for a running migration is ignored.
func (a *Agent) dispatch(ctx context.Context, it api.WorkItem) {
	log := a.logger.With("work_id", it.ID, "kind", it.Kind)
	switch it.Kind {
	case api.WorkValidate:
		if it.Spec == nil {
			log.Warn("validate work without a spec; ignored")
			break
		}
		spec := *it.Spec
		a.wg.Go(func() { a.validate(ctx, it.ValidationID, spec) })
	case api.WorkStart:
		if it.Spec == nil {
			log.Warn("start work without a spec; ignored")
			break
		}
		a.startRun(ctx, it.MigrationID, *it.Spec)
	case api.WorkCutover:
		if r := a.run(it.MigrationID); r != nil {
			r.requestCutover()
		} else {
			log.Warn("cutover for a migration this host does not run", "migration_id", it.MigrationID)
		}
	case api.WorkCancel, api.WorkExpire:
		if r := a.run(it.MigrationID); r != nil {
			log.Info("stopping migration", "migration_id", it.MigrationID)
			r.stop()
		}
	default:
		log.Warn("unknown work kind; ignored")
	}
	if err := a.client().AckWork(ctx, it.ID); err != nil && ctx.Err() == nil {
		log.Warn("ack work failed; the item will come again", "err", err)
	}
}

func (a *Agent) run(id string) *run {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[id]
}

// validate runs the checks and posts the result, retrying while the control
// plane is unreachable.
func (a *Agent) validate(ctx context.Context, id string, spec api.MigrationSpec) {
	log := a.logger.With("validation_id", id)
	log.Info("validation started", "source", spec.Request.Source.ClusterName, "destination", spec.Destination.Name)
	var res api.ValidationResult
	src, ok := a.sources[spec.Request.Source.ClusterName]
	if !ok {
		res = api.ValidationResult{Status: api.ValidationFailed,
			ErrorMessage: fmt.Sprintf("migration host %s is not configured for source %q (start the agent with --source %s=<connection string>)", a.opts.Hostname, spec.Request.Source.ClusterName, spec.Request.Source.ClusterName),
			Checks:       []api.ValidationCheck{}}
		res.Checks = append(res.Checks, api.ValidationCheck{Name: CheckSourceConnectivity, Status: api.CheckFailed, Message: res.ErrorMessage})
	} else {
		res = Validate(ctx, spec, src, ValidationOptions{Hostname: a.opts.Hostname, MinVersion: a.opts.MinVersion})
	}
	err := a.retryCall(ctx, "post validation result", func(ctx context.Context, cl *client.Client) error {
		err := cl.PostValidationResult(ctx, id, res)
		if client.IsConflict(err) || client.IsNotFound(err) {
			log.Info("validation result not needed any more", "err", err)
			return nil
		}
		return err
	})
	if err == nil {
		log.Info("validation finished", "status", res.Status, "error", res.ErrorMessage)
	}
}

// retryCall repeats a control-plane call until it succeeds, ctx ends, or the
// control plane answers with a client error (4xx other than 401 and 429).
func (a *Agent) retryCall(ctx context.Context, what string, call func(context.Context, *client.Client) error) error {
	backoff := 500 * time.Millisecond
	for {
		cl := a.client()
		err := call(ctx, cl)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *client.APIError
		switch {
		case client.IsUnauthorized(err):
			if rerr := a.reauth(ctx, cl, err); rerr != nil {
				return rerr
			}
			continue
		case errors.As(err, &ae) && ae.StatusCode < 500 && ae.StatusCode != http.StatusTooManyRequests:
			a.logger.Error(what+" refused", "err", err)
			return err
		}
		a.logger.Warn(what+" failed; retrying", "err", err, "retry_in", backoff)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
