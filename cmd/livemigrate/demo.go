package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/web"
)

// demoOptions are the flags of `livemigrate demo`.
type demoOptions struct {
	keep   bool
	docs   int
	rate   float64
	listen string
	dir    string
	oplog  int
	// catchUp is how long change application runs with the workload before
	// the demo stops the writes even when lag is still above the threshold.
	catchUp time.Duration
	// verifyWait bounds the wait, before the cutover, for the background
	// verifier to cover every namespace.
	verifyWait time.Duration
}

func init() {
	register(func(e *env) *cobra.Command {
		var o demoOptions
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "Run a whole live migration on local servers: source, destination, control plane, agent, workload",
			Long: `Run a whole live migration on this machine, end to end:

  1. start a source (FerretDB as replica set rs0 with an oplog) and a destination,
  2. load a sample dataset (3 databases, 6 collections, secondary and unique indexes),
  3. start a control plane and a migration host agent, and keep a write workload running,
  4. register the destination, create the link token, validate and start the
     migration through the Admin API, showing progress,
  5. when the migration is ready and the background verifier has compared every
     namespace (at most --verify-wait), stop the workload, cut over, and print the
     report (changes synced, downtime and its parts, duration, bytes, collections,
     verification and its coverage).

--keep leaves everything running afterwards and prints the web UI address and login.
The first run builds the FerretDB server binary (about a minute, once per machine).`,
			Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				if o.docs < 6 {
					return usageError{errors.New("--docs must be at least 6")}
				}
				return runDemo(c.Context(), e, o)
			},
		}
		f := cmd.Flags()
		f.BoolVar(&o.keep, "keep", false, "leave servers, control plane and agent running until Ctrl-C and print the UI address")
		f.IntVar(&o.docs, "docs", 100_000, "documents in the sample dataset")
		f.Float64Var(&o.rate, "rate", 20, "writes per second of the live workload during the migration (0: none)")
		f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address of the demo's control plane (web UI and API)")
		f.StringVar(&o.dir, "dir", "", "directory for the servers' data and the log (default a new temporary directory, removed after a successful run without --keep)")
		f.IntVar(&o.oplog, "oplog", 5_000, "maximum entries of the source's oplog")
		f.DurationVar(&o.catchUp, "catch-up", 20*time.Second, "how long changes are applied with the workload running before the demo stops the writes for the cutover")
		f.DurationVar(&o.verifyWait, "verify-wait", 5*time.Minute, "how long the demo waits for the background verifier to cover every namespace before the cutover: the first half with the workload running, the rest with the writes stopped (0: do not wait)")
		return cmd
	})
}

// demo holds what runDemo started.
type demo struct {
	out      io.Writer
	began    time.Time
	admin    *client.Client
	orgID    string
	groupID  string
	password string
	url      string
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] "+format+"\n", append([]any{time.Since(d.began).Seconds()}, args...)...)
}

func runDemo(ctx context.Context, e *env, o demoOptions) (err error) {
	d := &demo{out: e.stdout, began: time.Now()}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "livemigrate-demo-"); err != nil {
			return err
		}
		defer func() {
			if err == nil && !o.keep {
				os.RemoveAll(dir)
			} else {
				fmt.Fprintf(e.stdout, "Data and log kept in %s\n", dir)
			}
		}()
	}
	logFile, err := os.Create(filepath.Join(dir, "demo.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d.say("Log: %s", logFile.Name())

	// 1. Servers.
	d.say("Starting the source (replica set rs0 with an oplog) and the destination; the first run builds FerretDB (~1 min)…")
	// The oplog is created after the sample data is loaded: a real source's
	// history starts long before a migration, and FerretDB scans the whole
	// oplog on every read, so the demo keeps it to the live workload.
	src, err := mongotest.Start(ctx, mongotest.Options{Dir: filepath.Join(dir, "source"), ReplSet: "rs0"})
	if err != nil {
		return fmt.Errorf("start demo source: %w", err)
	}
	defer src.Close()
	dst, err := mongotest.Start(ctx, mongotest.Options{Dir: filepath.Join(dir, "destination")})
	if err != nil {
		return fmt.Errorf("start demo destination: %w", err)
	}
	defer dst.Close()
	d.say("Source %s, destination %s", src.Addr(), dst.Addr())

	// 2. Sample data.
	sc, err := src.Connect(ctx)
	if err != nil {
		return err
	}
	defer sc.Disconnect(context.WithoutCancel(ctx))
	d.say("Loading %d sample documents into shop, crm and analytics…", o.docs)
	n, err := loadDemoData(ctx, sc, o.docs)
	if err != nil {
		return err
	}
	d.say("Loaded %d documents in %d collections with secondary and unique indexes", n, len(demoDataset()))
	if err := sc.Database("local").CreateCollection(ctx, "oplog.rs",
		options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<30).SetMaxDocuments(int64(o.oplog))); err != nil {
		return fmt.Errorf("create the source's oplog: %w", err)
	}

	// 3. Control plane and agent.
	stopCP, err := d.startControlPlane(ctx, o.listen, filepath.Join(dir, "controlplane.db"), logger)
	if err != nil {
		return err
	}
	defer stopCP()
	tok, err := d.admin.CreateLinkToken(ctx, d.orgID, api.LinkTokenRequest{})
	if err != nil {
		return fmt.Errorf("create link token: %w", err)
	}
	d.say("Control plane at %s; link token created", d.url)
	const host, sourceName, destName = "demo-migration-host", "demo-source", "demo-destination"
	ag, err := agent.New(agent.Options{LinkToken: tok.LinkToken, Hostname: host, Version: version, Logger: logger,
		Sources: []agent.Source{{Name: sourceName, URI: mdb.URI(src.URI())}}})
	if err != nil {
		return err
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(agentCtx) }()
	defer func() { stopAgent(); _ = <-agentDone }() // the agent stops because we cancel it
	if _, err := d.admin.CreateCluster(ctx, d.groupID, api.ClusterRequest{Name: destName, ConnectionString: dst.URI()}); err != nil {
		return fmt.Errorf("register destination cluster: %w", err)
	}
	srcGroup, dep, err := d.waitDeployment(ctx, sourceName, agentDone)
	if err != nil {
		return err
	}
	d.say("Agent %s registered; it reports %s: MongoDB %s (FCV %s), %s data, %d MB oplog",
		host, dep.Name, dep.MongoDBVersion, dep.FeatureCompatibilityVersion, migration.FormatBytes(dep.DBSizeBytes), dep.OplogSizeMB)

	// 4. Workload, validation, migration.
	var wl *mongotest.Workload
	if o.rate > 0 {
		wl = mongotest.StartWorkload(ctx, sc, mongotest.WorkloadOptions{Namespaces: demoWorkloadNamespaces, Writers: 2, Rate: o.rate, IDBase: 1_000_000_000_000})
		defer func() {
			if wl != nil {
				_, _ = wl.Stop()
			}
		}()
		d.say("Application workload writing %.0f ops/s to %v", o.rate, demoWorkloadNamespaces)
	}
	req := api.MigrationRequest{
		Source:         api.MigrationSource{ClusterName: sourceName, GroupID: srcGroup, ManagedAuthentication: true},
		Destination:    api.MigrationDestination{ClusterName: destName, GroupID: d.groupID, HostnameSchemaType: api.HostnamePublic},
		MigrationHosts: []string{host},
	}
	if err := d.validate(ctx, req); err != nil {
		return err
	}
	// Let the workload build some change history before the start point.
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	m, err := d.admin.CreateMigration(ctx, d.groupID, req)
	if err != nil {
		return fmt.Errorf("create migration: %w", err)
	}
	d.say("Migration %s created", m.ID)
	// Ready for cutover, or caught up as far as this machine allows with the
	// workload running: then stop the writes as an operator would.
	var applyingSince time.Time
	err = d.follow(ctx, m.ID, func(p api.MigrationProgress) bool {
		if p.Migration.ReadyForCutover {
			return true
		}
		if p.Progress != nil && p.Progress.Phase == "change event application" && applyingSince.IsZero() {
			applyingSince = time.Now()
		}
		return o.catchUp > 0 && !applyingSince.IsZero() && time.Since(applyingSince) > o.catchUp && wl != nil
	})
	if err != nil {
		return err
	}
	// The continuous verifier compares every namespace while the writes
	// go on; it pauses while the lag is high, so on a loaded machine the
	// rest of the wait happens with the writes stopped (and says so).
	covered, err := d.waitBackgroundVerification(ctx, m.ID, o.verifyWait/2, "with the workload running")
	if err != nil {
		return err
	}

	// 5. Cutover.
	var stoppedAt time.Time
	if wl != nil {
		recs, werr := wl.Stop()
		wl, stoppedAt = nil, time.Now()
		if werr != nil {
			d.say("Workload reported errors: %v", werr)
		}
		d.say("Application writes stopped for the cutover (%d writes acknowledged during the migration)", len(recs))
	} else {
		d.say("Ready for cutover")
	}
	if !covered {
		covered, err = d.waitBackgroundVerification(ctx, m.ID, o.verifyWait-o.verifyWait/2, "with the writes stopped (for the application this is downtime too)")
		if err != nil {
			return err
		}
		if !covered {
			d.say("The cutover compares the namespaces not verified in the background in full: the downtime grows with their size (raise --verify-wait)")
		}
	}
	if err := d.cutover(ctx, m.ID); err != nil {
		return err
	}
	if !stoppedAt.IsZero() {
		d.say("Cutover requested %s after the writes stopped (the report's downtime starts here)", time.Since(stoppedAt).Round(100*time.Millisecond))
	}
	d.say("Cutover confirmed: draining the last changes, restoring unique indexes, verifying…")
	if err := d.follow(ctx, m.ID, func(p api.MigrationProgress) bool { return p.Migration.Status == api.MigrationComplete }); err != nil {
		return err
	}
	rep, err := d.admin.MigrationReport(ctx, d.groupID, m.ID)
	if err != nil {
		return fmt.Errorf("migration report: %w", err)
	}
	d.printReport(rep)
	if o.keep {
		fmt.Fprintf(d.out, "\nEverything keeps running (Ctrl-C to stop):\n  web UI and API  %s   user admin   password %s\n  source          %s\n  destination     %s\n",
			d.url, d.password, src.URI(), dst.URI())
		<-ctx.Done()
		return nil
	}
	if rep.Verification.Status != api.VerificationPassed {
		return exitError{exitMismatch, fmt.Errorf("verification %s: %s", rep.Verification.Status, rep.Verification.Message)}
	}
	return nil
}

// startControlPlane runs a control plane in this process with a fresh owner.
func (d *demo) startControlPlane(ctx context.Context, listen, dataPath string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", listen, err)
	}
	key := make([]byte, controlplane.KeySize)
	rand.Read(key)
	d.url = "http://" + ln.Addr().String()
	srv, err := controlplane.New(ctx, controlplane.Options{DataPath: dataPath, Key: key, ExternalURL: d.url, Logger: logger, UI: web.Handler()})
	if err != nil {
		ln.Close()
		return nil, err
	}
	_, d.password, d.orgID, err = srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: "admin"})
	if err != nil {
		srv.Close()
		ln.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { _ = srv.Serve(sctx, ln); close(done) }()
	d.admin = client.New(d.url, client.BasicAuth("admin", d.password))
	projects, err := d.admin.Projects(ctx)
	if err != nil || len(projects) == 0 {
		cancel()
		<-done
		srv.Close()
		return nil, fmt.Errorf("list projects: %v", err)
	}
	d.groupID = projects[0].ID
	return func() { cancel(); <-done; srv.Close() }, nil
}

// waitDeployment waits until the agent reported deployment name.
func (d *demo) waitDeployment(ctx context.Context, name string, agentDone <-chan error) (string, api.AvailableDeployment, error) {
	for {
		ps, err := d.admin.AvailableProjects(ctx, d.orgID)
		if err != nil {
			return "", api.AvailableDeployment{}, err
		}
		for _, p := range ps {
			for _, dep := range p.Deployments {
				if dep.Name == name && dep.MongoDBVersion != "" {
					return p.ProjectID, dep, nil
				}
			}
		}
		select {
		case err := <-agentDone:
			return "", api.AvailableDeployment{}, fmt.Errorf("agent stopped: %v", err)
		case <-ctx.Done():
			return "", api.AvailableDeployment{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *demo) validate(ctx context.Context, req api.MigrationRequest) error {
	v, err := d.admin.CreateValidation(ctx, d.groupID, req)
	if err != nil {
		return fmt.Errorf("create validation: %w", err)
	}
	d.say("Validating…")
	for {
		checks, err := d.admin.ValidationChecks(ctx, d.groupID, v.ID)
		if err != nil {
			return err
		}
		if checks.Status != api.ValidationPending {
			for _, c := range checks.Checks {
				fmt.Fprintf(d.out, "          %-8s %-28s %s\n", c.Status, c.Name, c.Message)
			}
			if checks.Status != api.ValidationSuccess {
				return fmt.Errorf("validation %s", checks.Status)
			}
			d.say("Validation %s", checks.Status)
			return nil
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// follow prints progress until done holds, or the migration fails.
func (d *demo) follow(ctx context.Context, id string, done func(api.MigrationProgress) bool) error {
	var last time.Time
	lastPhase := ""
	for {
		p, err := d.admin.MigrationProgress(ctx, d.groupID, id)
		if err != nil {
			return err
		}
		switch p.Migration.Status {
		case api.MigrationFailed, api.MigrationExpired:
			return fmt.Errorf("migration %s: %s", p.Migration.Status, p.ErrorMessage)
		}
		if done(p) {
			return nil
		}
		if pr := p.Progress; pr != nil && (time.Since(last) >= 2*time.Second || pr.Phase != lastPhase) {
			last, lastPhase = time.Now(), pr.Phase
			d.say("%-26s %s", pr.Phase, progressDetail(pr))
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitBackgroundVerification waits, at most wait, until the background
// verifier has a valid pass over every namespace: the cutover then rechecks
// only the documents changed since (continuous mode), and the downtime does
// not grow with the data. It says what it found and reports whether every
// namespace was covered (true as well when there is nothing to wait for).
func (d *demo) waitBackgroundVerification(ctx context.Context, id string, wait time.Duration, how string) (bool, error) {
	if wait <= 0 {
		return true, nil
	}
	d.say("Waiting (at most %s, %s) until every namespace is verified in the background, so the cutover rechecks only what changed since…", wait, how)
	began := time.Now()
	var last *api.BackgroundVerification
	var maxLag, minLag int64 = 0, -1
	full := func() bool { return last != nil && last.Namespaces > 0 && last.NamespacesVerified == last.Namespaces }
	err := d.follow(ctx, id, func(p api.MigrationProgress) bool {
		if p.Progress != nil && p.Progress.BackgroundVerification != nil {
			last = p.Progress.BackgroundVerification
			maxLag = max(maxLag, p.Progress.LagTimeSeconds)
			if minLag < 0 || p.Progress.LagTimeSeconds < minLag {
				minLag = p.Progress.LagTimeSeconds
			}
		}
		return full() || time.Since(began) > wait
	})
	switch {
	case err != nil:
		return false, err
	case last == nil:
		d.say("No background verification reported in %s (verification mode full or after?): the cutover verifies every document", wait)
		return true, nil
	case full():
		d.say("Verified in background: %d/%d namespaces, %d documents compared, after %s", last.NamespacesVerified, last.Namespaces, last.DocumentsCompared,
			time.Since(began).Round(100*time.Millisecond))
		return true, nil
	}
	d.say("Verified in background: only %d/%d namespaces (%d documents compared) after %s; the lag was %d–%d s: the verifier yields to change application (it pauses while the lag nears the commit threshold and resumes once the lag is low again)",
		last.NamespacesVerified, last.Namespaces, last.DocumentsCompared, wait, minLag, maxLag)
	return false, nil
}

func progressDetail(p *api.Progress) string {
	switch p.Phase {
	case "collection copy", "index building":
		pct := 0.0
		if p.EstimatedTotalBytes > 0 {
			pct = min(100, 100*float64(p.EstimatedCopiedBytes)/float64(p.EstimatedTotalBytes))
		}
		return fmt.Sprintf("%d / ~%d docs  %s / ~%s  (%.0f%%)", p.CopiedDocuments, p.EstimatedTotalDocuments,
			migration.FormatBytes(p.EstimatedCopiedBytes), migration.FormatBytes(p.EstimatedTotalBytes), pct)
	case "change event application":
		ready := "catching up"
		if p.CanCommit {
			ready = "ready for cutover"
		}
		line := fmt.Sprintf("lag %ds  %d changes applied  %s", p.LagTimeSeconds, p.TotalEventsApplied, ready)
		if b := p.BackgroundVerification; b != nil {
			line += fmt.Sprintf("  verified in background: %d/%d namespaces", b.NamespacesVerified, b.Namespaces)
		}
		return line
	}
	return p.Info
}

// cutover confirms the cutover, retrying while the migration is briefly not
// ready (lag above the threshold right after the writes stopped).
func (d *demo) cutover(ctx context.Context, id string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := d.admin.Cutover(ctx, d.groupID, id)
		if err == nil || !client.IsConflict(err) || time.Now().After(deadline) {
			return err
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

func (d *demo) printReport(r api.MigrationReport) {
	d.say("Migration complete")
	w := d.out
	fmt.Fprintf(w, "\n  changes synced      %d\n", r.ChangesSynced)
	fmt.Fprintf(w, "  downtime            %.1f s\n", r.DowntimeSeconds)
	if dt := r.Downtime; dt != nil {
		fmt.Fprintf(w, "    commit point      %.2f s\n    drain             %.2f s\n    index restore     %.2f s\n    verification      %.2f s (%s: %d documents rechecked, %d found different, %d repaired)\n    other             %.2f s\n",
			dt.CommitPointSeconds, dt.DrainSeconds, dt.IndexRestoreSeconds, dt.VerificationSeconds, dt.VerificationMode,
			dt.DocumentsRechecked, dt.FoundBeforeRepair.Missing+dt.FoundBeforeRepair.Extra+dt.FoundBeforeRepair.Differing, dt.Repaired, dt.OtherSeconds)
		c := dt.Coverage
		cov := "complete"
		if !c.Complete {
			cov = "INCOMPLETE"
		}
		fmt.Fprintf(w, "  coverage            %s: %d namespaces, %d by background pass, %d compared in full\n", cov, c.Namespaces, c.NamespacesByPass, len(c.ComparedInFull))
		for _, n := range c.ComparedInFull {
			fmt.Fprintf(w, "    %-22s compared in full: %s\n", n.Namespace, n.Reason)
		}
		if b := dt.Background; b != nil {
			fmt.Fprintf(w, "  in the background   %s\n", backgroundLine(b))
		}
	}
	fmt.Fprintf(w, "  duration            %.1f s\n", r.DurationSeconds)
	fmt.Fprintf(w, "  bytes copied        %s\n", migration.FormatBytes(r.BytesCopied))
	fmt.Fprintf(w, "  collections copied  %d\n", r.CollectionsCopied)
	fmt.Fprintf(w, "  verification        %s: %s\n", r.Verification.Status, r.Verification.Message)
	for _, n := range r.Verification.Namespaces {
		fmt.Fprintf(w, "    %-22s matched %d  missing %d  extra %d  differing %d\n", n.Namespace, n.Matched, n.Missing, n.Extra, n.Differing)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
