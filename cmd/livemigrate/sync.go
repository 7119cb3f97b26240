package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/livemigrate/livemigrate/internal/cli"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/syncapi"
)

func init() { register(newSyncCmd) }

func newSyncCmd(e *env) *cobra.Command {
	var (
		source, destination, listen, token string
		verification                       string
		creds                              uriCreds
		include, exclude                   []string
		startNow                           bool
		linger                             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sync --source URI --destination URI",
		Short: "Run the sync engine for one source and destination, with a local API",
		Long: `Run the sync engine for one source and destination, with a local HTTP API
shaped like mongosync's: POST /api/v1/start, GET /api/v1/progress,
POST /api/v1/pause, /api/v1/resume, /api/v1/commit.

The API binds to 127.0.0.1 by default; binding elsewhere requires --token
(or LIVEMIGRATE_SYNC_TOKEN), sent as "Authorization: Bearer <token>".
Ctrl-C stops cleanly after a final checkpoint (exit status 130); running the same command
again resumes.`,
		Example: `  livemigrate sync --source mongodb://src:27017 --destination mongodb://dst:27017 --start
  curl -s localhost:27182/api/v1/progress
  curl -s -XPOST localhost:27182/api/v1/commit`,
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if source, err = creds.resolve(e.logger, "source", source); err != nil {
				return err
			}
			if destination, err = creds.resolve(e.logger, "destination", destination); err != nil {
				return err
			}
			if source == "" || destination == "" {
				return usageError{errors.New("--source and --destination are required (see 'livemigrate sync --help')")}
			}
			if token == "" {
				token = os.Getenv("LIVEMIGRATE_SYNC_TOKEN")
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usageError{fmt.Errorf("--listen %q: want host:port", listen)}
			}
			if ip := net.ParseIP(host); token == "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return usageError{fmt.Errorf("--listen %s is not a loopback address: set --token so the API is not open to the network", listen)}
			}
			inc, err := parseFilters(include)
			if err != nil {
				return usageError{err}
			}
			exc, err := parseFilters(exclude)
			if err != nil {
				return usageError{err}
			}
			mode := engine.VerifyMode(verification)
			if err := mode.Validate(); err != nil {
				return usageError{fmt.Errorf("--verification: %w", err)}
			}
			s := &syncRun{ctx: c.Context(), env: e, opts: engine.Options{
				Source: mdb.URI(source), Destination: mdb.URI(destination), Include: inc, Exclude: exc, Verification: mode,
			}, done: make(chan error, 1)}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			srv := &http.Server{Handler: syncapi.Handler(s, token), ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			defer func() { _ = srv.Shutdown(context.WithoutCancel(c.Context())) }()
			fmt.Fprintf(e.stdout, "livemigrate sync: API on http://%s/api/v1/ (state IDLE until POST /api/v1/start)\n", ln.Addr())
			if startNow {
				if err := s.Start(syncapi.StartRequest{}); err != nil {
					return err
				}
			}
			if err := s.wait(c.Context()); err != nil {
				return err
			}
			// Keep answering GET /api/v1/progress for a while, so a client
			// polling for COMMITTED sees it before the API goes away.
			select {
			case <-c.Context().Done():
			case <-time.After(linger):
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&source, "source", "", "source connection string (mongodb://…)")
	f.StringVar(&destination, "destination", "", "destination connection string (mongodb://…)")
	creds.addFlags(f)
	f.StringArrayVar(&include, "include", nil, "namespace to include: db or db.coll (repeatable)")
	f.StringArrayVar(&exclude, "exclude", nil, "namespace to exclude: db or db.coll (repeatable)")
	f.StringVar(&listen, "listen", "127.0.0.1:27182", "address of the local API")
	f.StringVar(&token, "token", "", "bearer token the API requires (required when --listen is not loopback)")
	f.StringVar(&verification, "verification", string(engine.VerifyContinuous), verificationHelp)
	f.BoolVar(&startNow, "start", false, "start at once instead of waiting for POST /api/v1/start")
	f.DurationVar(&linger, "linger", 10*time.Second, "how long the API keeps serving progress after the commit before the command exits")
	return cmd
}

// verificationHelp is the one-line trade-off of the verification modes.
const verificationHelp = "how the commit verifies: continuous (compared in the background; the downtime rechecks only what changed), " +
	"full (every document compared inside the downtime: slower, grows with the data), " +
	"after (destination writable first, then compared; differences reported, not repaired)"

// parseFilters turns "db" and "db.coll" into mongosync-shaped filters.
func parseFilters(in []string) ([]migration.Filter, error) {
	var out []migration.Filter
	for _, s := range in {
		db, coll, hasColl := strings.Cut(s, ".")
		if db == "" || (hasColl && coll == "") {
			return nil, fmt.Errorf("namespace filter %q: want <database> or <database>.<collection>", s)
		}
		f := migration.Filter{Database: db}
		if hasColl {
			f.Collections = []string{coll}
		}
		out = append(out, f)
	}
	return out, nil
}

// syncRun adapts engine.Engine to the API.
type syncRun struct {
	ctx  context.Context
	env  *env
	opts engine.Options
	done chan error

	mu  sync.Mutex // guards eng
	eng *engine.Engine
}

func (s *syncRun) engine() *engine.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eng
}

func (s *syncRun) Start(req syncapi.StartRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != nil {
		return fmt.Errorf("%w: already started", syncapi.ErrInvalidState)
	}
	opts := s.opts
	if len(req.IncludeNamespaces) > 0 {
		opts.Include = req.IncludeNamespaces
	}
	if len(req.ExcludeNamespaces) > 0 {
		opts.Exclude = req.ExcludeNamespaces
	}
	if req.VerificationMode != "" {
		opts.Verification = engine.VerifyMode(req.VerificationMode)
		if err := opts.Verification.Validate(); err != nil {
			return fmt.Errorf("%w: verificationMode: %v", syncapi.ErrInvalidRequest, err)
		}
	}
	eng, err := engine.New(opts, s.env.logger)
	if err != nil {
		return err
	}
	s.eng = eng
	go func() { s.done <- eng.Run(s.ctx) }()
	return nil
}

func (s *syncRun) Progress() migration.Progress {
	if eng := s.engine(); eng != nil {
		return eng.Progress()
	}
	return migration.Progress{State: migration.StateIdle, Phase: migration.PhaseIdle}
}

func (s *syncRun) call(f func(*engine.Engine) error) error {
	eng := s.engine()
	if eng == nil {
		return fmt.Errorf("%w: not started (POST /api/v1/start)", syncapi.ErrInvalidState)
	}
	if err := f(eng); err != nil {
		return fmt.Errorf("%w: %v", syncapi.ErrInvalidState, err)
	}
	return nil
}

func (s *syncRun) Pause() error  { return s.call((*engine.Engine).Pause) }
func (s *syncRun) Resume() error { return s.call((*engine.Engine).Resume) }
func (s *syncRun) Commit() error { return s.call((*engine.Engine).Commit) }

func (s *syncRun) Report() any {
	if eng := s.engine(); eng != nil {
		if r := eng.CommitReport(); r != nil {
			return r
		}
	}
	return nil
}

// wait shows progress until the run ends (a bar on a terminal, plain
// lines otherwise), then the commit report.
func (s *syncRun) wait(ctx context.Context) error {
	d := &syncDisplay{w: s.env.stdout, tty: cli.IsTerminal(s.env.stdout)}
	tick := time.NewTicker(d.every())
	defer tick.Stop()
	for {
		select {
		case err := <-s.done:
			if eng := s.engine(); eng != nil {
				d.show(eng.Progress(), time.Now())
			}
			d.done()
			if err != nil {
				return err
			}
			if r := s.engine().CommitReport(); r != nil {
				writeCommitReport(s.env.stdout, r)
			}
			return nil
		case <-ctx.Done():
			d.done()
			if s.engine() == nil {
				return interrupted{"livemigrate sync: interrupted before the run started"}
			}
			// The engine saves a final checkpoint before it returns.
			if err := <-s.done; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return interrupted{"livemigrate sync: interrupted; stopped after a final checkpoint (run the same command again to resume)"}
		case <-tick.C:
			if s.engine() != nil {
				d.show(s.Progress(), time.Now())
			}
		}
	}
}

// writeCommitReport prints the commit report: the downtime and its parts,
// then what verification compared, found and repaired.
func writeCommitReport(w io.Writer, r *engine.CommitReport) {
	fmt.Fprintf(w, "committed: %d events applied, downtime %.1fs (commit point %.1fs, drain %.1fs, index restore %.1fs, verification %.1fs), duration %.0fs\n",
		r.EventsApplied, r.DowntimeSeconds, r.CommitPointSeconds, r.DrainSeconds, r.IndexRestoreSeconds, r.VerificationSeconds, r.DurationSeconds)
	when := "inside the downtime"
	if r.Mode == engine.VerifyAfter {
		when = "after the destination became writable, without repair"
	}
	fmt.Fprintf(w, "verification %s (%s): %d documents compared, %d missing, %d extra, %d differing found, %d repaired, verified=%v\n",
		r.Mode, when, r.DocumentsRechecked, r.Found.Missing, r.Found.Extra, r.Found.Differing, r.Repaired, r.Verified)
	if c := r.Coverage; c != nil {
		cov := "complete"
		if !c.Complete {
			cov = "INCOMPLETE"
		}
		fmt.Fprintf(w, "coverage %s: %d namespaces, %d covered by background passes", cov, c.Namespaces, c.ByPass)
		for _, n := range c.InFull {
			fmt.Fprintf(w, "; %s compared in full (%s)", n.Namespace, n.Reason)
		}
		fmt.Fprintln(w)
	}
	if b := r.Background; b != nil {
		fmt.Fprintf(w, "background verification: %d documents compared in %d passes, %d changed documents rechecked, %d pauses for lag (%.0fs), slowed %.0fs\n",
			b.DocumentsCompared, b.Passes, b.Rechecked, b.Pauses, b.PausedSeconds, b.SlowedSeconds)
	}
}
