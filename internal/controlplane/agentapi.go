package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// agent is an authenticated migration host.
type agent struct {
	id, orgID, hostname string
	secretHash          string // the credential the request carried
	lost                bool
}

func (s *Server) remoteAddr(r *http.Request) (netip.Addr, bool) {
	host := r.RemoteAddr
	if s.opts.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			host = strings.TrimSpace(strings.Split(xff, ",")[0])
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// allowedIP enforces the org's link-token access list (empty list: any address).
func (s *Server) allowedIP(ctx context.Context, r *http.Request, orgID string) error {
	entries, err := s.store.AccessList(ctx, orgID)
	if errors.Is(err, errNotFound) {
		return nil // agents of a deleted link are revoked anyway
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	addr, ok := s.remoteAddr(r)
	if ok {
		for _, e := range entries {
			if p, err := netip.ParsePrefix(e); err == nil && p.Contains(addr) {
				return nil
			}
		}
	}
	return errorf(http.StatusForbidden, "IP_ADDRESS_NOT_ON_ACCESS_LIST", "the migration host's address is not on the link token's access list")
}

// agentAuthed wraps an agent endpoint: bearer agent secret, access list, liveness.
func (s *Server) agentAuthed(h func(w http.ResponseWriter, r *http.Request, a *agent) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticateAgent(r)
		if err == nil {
			err = h(w, r, a)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) authenticateAgent(r *http.Request) (*agent, error) {
	ctx := r.Context()
	auth := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || secret == "" {
		return nil, errorf(http.StatusUnauthorized, "UNAUTHORIZED", "agent calls need Authorization: Bearer <agent secret>")
	}
	cred, err := s.store.LookupAgentCredential(ctx, tokenHash(secret))
	if err != nil {
		return nil, err
	}
	if cred.live == nil {
		return nil, cred.refusal()
	}
	a := cred.live
	if err := s.allowedIP(ctx, r, a.orgID); err != nil {
		return nil, err
	}
	return a, s.seen(ctx, a)
}

// seen records that agent a is alive; a lost agent is found again and its
// stalled migrations resume.
func (s *Server) seen(ctx context.Context, a *agent) error {
	now := time.Now()
	if !a.lost {
		return s.store.AgentSeen(ctx, a.id, now)
	}
	err := s.store.Tx(ctx, func(st *store) error {
		if err := st.AgentBack(ctx, a.id, now); err != nil {
			return err
		}
		return s.hostBack(ctx, st, a.id, a.hostname, now)
	})
	a.lost = false
	s.logger.Info("agent back", "agent_id", a.id, "hostname", a.hostname)
	s.kickTimers()
	return err
}

// hostBack resumes the migrations that stalled while agent agentID was lost
// (event RESUMED); a cutover in flight carries on. They become ready for
// cutover again with the host's next canCommit progress.
func (s *Server) hostBack(ctx context.Context, st *store, agentID, hostname string, now time.Time) error {
	stalled, err := st.StalledMigrations(ctx, agentID)
	if err != nil {
		return err
	}
	for _, m := range stalled {
		if err := st.UnstallMigration(ctx, m.id, now); err != nil {
			return err
		}
		msg := "migration host " + hostname + " is back"
		if m.cutoverRequested.Valid {
			msg += "; the cutover resumes"
		}
		if err := s.addEvent(ctx, st, m, api.EventResumed, msg, now); err != nil {
			return err
		}
	}
	return nil
}

// requeue replaces an agent's pending work with one item per unfinished
// validation and migration, for an agent that restarted and lost its state.
func (s *Server) requeue(ctx context.Context, st *store, agentID string, now time.Time) error {
	if err := st.AckAllWork(ctx, agentID, now); err != nil {
		return err
	}
	if err := st.RequeueValidations(ctx, agentID, now); err != nil {
		return err
	}
	open, err := st.AgentOpenMigrations(ctx, agentID)
	if err != nil {
		return err
	}
	for _, m := range open {
		if err := st.Enqueue(ctx, agentID, api.WorkStart, "", m.id, now); err != nil {
			return err
		}
		if m.cutoverRequested.Valid {
			if err := st.Enqueue(ctx, agentID, api.WorkCutover, "", m.id, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// POST /api/agent/v1/heartbeat
func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request, a *agent) error {
	var hb api.AgentHeartbeat
	if err := decodeOptionalJSON(w, r, maxAgentBodyBytes, &hb); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PUT /api/agent/v1/deployments
func (s *Server) handleDeployments(w http.ResponseWriter, r *http.Request, a *agent) error {
	ctx := r.Context()
	var rep api.DeploymentsReport
	if err := decodeJSON(w, r, maxAgentBodyBytes, &rep); err != nil {
		return err
	}
	for _, d := range rep.Deployments {
		if strings.TrimSpace(d.Name) == "" {
			return badRequest("MISSING_ATTRIBUTE", "every deployment needs a name")
		}
		if err := checkName("deployment name", d.Name); err != nil {
			return err
		}
	}
	if err := s.store.SetDeployments(ctx, a.id, rep.Deployments); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /api/agent/v1/work?waitSeconds=N: long-poll for the agent's pending work.
func (s *Server) handleWork(w http.ResponseWriter, r *http.Request, a *agent) error {
	ctx := r.Context()
	wait := time.Duration(0)
	if v := r.URL.Query().Get("waitSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("INVALID_QUERY_PARAMETER", "waitSeconds must be a non-negative integer")
		}
		wait = clampSeconds(n, s.timing.MaxWait)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		wake := s.work.wait(a.id) // before the query, so no notify is missed
		items, err := s.pendingWork(ctx, a)
		if err != nil {
			return err
		}
		if len(items) > 0 {
			writeJSON(w, http.StatusOK, api.WorkItems{Items: items})
			return nil
		}
		select {
		case <-wake:
		case <-timer.C:
			writeJSON(w, http.StatusOK, api.WorkItems{Items: []api.WorkItem{}})
			return nil
		case <-ctx.Done():
			writeJSON(w, http.StatusOK, api.WorkItems{Items: []api.WorkItem{}})
			return nil
		}
	}
}

// pendingWork builds the agent's un-acked items, decrypting specs for the
// agent. Items whose validation or migration is no longer open are retired.
func (s *Server) pendingWork(ctx context.Context, a *agent) ([]api.WorkItem, error) {
	if err := s.stillValid(ctx, a); err != nil { // revoked or replaced during a long-poll
		return nil, err
	}
	pending, err := s.store.PendingWork(ctx, a.id)
	if err != nil {
		return nil, err
	}
	items := []api.WorkItem{}
	for _, x := range pending {
		item := api.WorkItem{ID: strconv.FormatInt(x.id, 10), Kind: x.kind, ValidationID: x.validationID, MigrationID: x.migrationID}
		var req sealedRequest
		open := true
		switch x.kind {
		case api.WorkValidate:
			req, err = s.store.ValidationRequest(ctx, x.validationID)
			open = req.status == string(api.ValidationPending)
		case api.WorkStart:
			req, err = s.store.MigrationRequest(ctx, x.migrationID)
			open = req.status == string(api.MigrationNew) || req.status == string(api.MigrationWorking)
		}
		sealed, groupID, dest := req.requestEnc, req.groupID, req.destination
		if errors.Is(err, errNotFound) {
			open, err = false, nil
		}
		if err != nil {
			return nil, err
		}
		if !open { // finalized: the agent's allowance to this spec is gone
			if err := s.store.AckWork(ctx, x.id, time.Now()); err != nil {
				return nil, err
			}
			continue
		}
		if sealed != nil {
			spec := &api.MigrationSpec{}
			plain, err := s.sealer.open(sealed)
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(plain, &spec.Request); err != nil {
				return nil, err
			}
			if spec.Destination, err = s.destination(ctx, s.store, groupID, dest); err != nil {
				if errors.Is(err, errNotFound) {
					err = conflict("DESTINATION_CLUSTER_GONE", "destination cluster %q was deleted", dest)
				}
				return nil, err
			}
			owner := x.migrationID
			if x.kind == api.WorkValidate {
				owner = x.validationID
			}
			ready, err := s.scopeDestination(ctx, owner, &spec.Destination)
			if err != nil {
				return nil, err
			}
			if !ready {
				continue // held until its destination user exists
			}
			item.Spec = spec
		}
		items = append(items, item)
	}
	return items, nil
}

// POST /api/agent/v1/work/{itemId}/ack
func (s *Server) handleAck(w http.ResponseWriter, r *http.Request, a *agent) error {
	id, err := strconv.ParseInt(r.PathValue("itemId"), 10, 64)
	if err != nil {
		return notFound("work item", r.PathValue("itemId"))
	}
	err = s.store.AckAgentWork(r.Context(), a.id, id, time.Now())
	if errors.Is(err, errNotFound) {
		return notFound("work item", r.PathValue("itemId"))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// POST /api/agent/v1/validations/{validationId}/result
func (s *Server) handleValidationResult(w http.ResponseWriter, r *http.Request, a *agent) error {
	ctx := r.Context()
	var res api.ValidationResult
	if err := decodeJSON(w, r, maxAgentBodyBytes, &res); err != nil {
		return err
	}
	if res.Status != api.ValidationSuccess && res.Status != api.ValidationFailed {
		return badRequest("INVALID_ENUM_VALUE", "status must be SUCCESS or FAILED")
	}
	if res.Checks == nil {
		res.Checks = []api.ValidationCheck{}
	}
	id := r.PathValue("validationId")
	s.scrubValidation(ctx, s.store, id, &res)
	checks, _ := json.Marshal(res.Checks)
	done, err := s.store.FinishValidation(ctx, id, a.id, res, string(checks), time.Now())
	if err != nil {
		return err
	}
	if !done {
		status, err := s.store.AgentValidationStatus(ctx, id, a.id)
		if errors.Is(err, errNotFound) {
			return notFound("validation", id)
		}
		if err != nil {
			return err
		}
		return conflict("VALIDATION_FINISHED", "validation %s is already %s", id, status)
	}
	s.logger.Info("validation finished", "validation_id", id, "status", res.Status)
	wake(s.userWake) // its destination user goes
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// agentMigration loads a migration the agent runs.
func agentMigration(ctx context.Context, st *store, a *agent, id string) (*migration, error) {
	m, err := st.Migration(ctx, id)
	if errors.Is(err, errNotFound) || (err == nil && m.agentID != a.id) {
		return nil, notFound("live migration", id)
	}
	return m, err
}

// POST /api/agent/v1/migrations/{migrationId}/progress
func (s *Server) handleMigrationProgress(w http.ResponseWriter, r *http.Request, a *agent) error {
	var p api.Progress
	if err := decodeJSON(w, r, maxAgentBodyBytes, &p); err != nil {
		return err
	}
	ack, err := s.recordProgress(r.Context(), a, r.PathValue("migrationId"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ack)
	return nil
}

// recordProgress stores p for migration id: NEW becomes WORKING, the first
// canCommit starts the cutover window, state FAILED fails the migration.
func (s *Server) recordProgress(ctx context.Context, a *agent, id string, p api.Progress) (api.ProgressAck, error) {
	var ack api.ProgressAck
	now := time.Now()
	p.ReportedAt = fromMS(ms(now))
	err := s.store.Tx(ctx, func(st *store) error {
		m, err := agentMigration(ctx, st, a, id)
		if err != nil {
			return err
		}
		if !m.active() {
			ack = api.ProgressAck{Status: m.status, Directive: api.DirectiveStop}
			return nil
		}
		if m.status == api.MigrationNew {
			m.status = api.MigrationWorking
			if err := s.addEvent(ctx, st, m, api.EventStarted, "migration host "+m.host+" started the migration", now); err != nil {
				return err
			}
		}
		if p.State == api.StateFailed {
			msg := s.scrubMigrationText(ctx, st, m, p.Error)
			if msg == "" {
				msg = "the sync engine failed"
			}
			ack = api.ProgressAck{Status: api.MigrationFailed, Directive: api.DirectiveStop}
			return s.finish(ctx, st, m, api.MigrationFailed, msg, api.EventFailed, now)
		}
		pj, _ := json.Marshal(p)
		ready := p.CanCommit
		windowStart, expires := m.windowStarted, m.expiresAt
		if ready && !windowStart.Valid {
			windowStart = sql.NullInt64{Int64: ms(now), Valid: true}
			expires = sql.NullInt64{Int64: ms(now.Add(s.timing.CutoverWindow)), Valid: true}
			msg := "ready for cutover; the cutover window closes at " + fromMS(expires.Int64).Format(time.RFC3339)
			if err := s.addEvent(ctx, st, m, api.EventReadyForCutover, msg, now); err != nil {
				return err
			}
			defer s.kickTimers()
		}
		up := progressUpdate{status: m.status, ready: ready, lagSeconds: p.LagTimeSeconds, progress: string(pj), windowStarted: windowStart, expiresAt: expires}
		if err := st.SetProgress(ctx, m.id, up, now); err != nil {
			return err
		}
		ack = api.ProgressAck{Status: m.status, Directive: api.DirectiveContinue}
		if m.cutoverRequested.Valid {
			ack.Directive = api.DirectiveCutover
		}
		return nil
	})
	if err == nil {
		s.kickWebhooks()
		s.logger.LogAttrs(ctx, slog.LevelDebug, "progress", slog.String("migration_id", id), slog.String("phase", p.Phase), slog.Int64("lag_seconds", p.LagTimeSeconds))
	}
	return ack, err
}

// checkDowntime refuses an itemised downtime with a negative part or count
// or an unknown verification mode.
func checkDowntime(d *api.Downtime) error {
	if d == nil {
		return nil
	}
	switch d.VerificationMode {
	case "continuous", "full", "after":
	default:
		return badRequest("INVALID_ENUM_VALUE", "downtime.verificationMode %q: want continuous, full or after", d.VerificationMode)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"engineSeconds", d.EngineSeconds}, {"commitPointSeconds", d.CommitPointSeconds}, {"drainSeconds", d.DrainSeconds},
		{"indexRestoreSeconds", d.IndexRestoreSeconds}, {"verificationSeconds", d.VerificationSeconds},
		{"documentsRechecked", float64(d.DocumentsRechecked)}, {"repaired", float64(d.Repaired)},
		{"foundBeforeRepair.missing", float64(d.FoundBeforeRepair.Missing)}, {"foundBeforeRepair.extra", float64(d.FoundBeforeRepair.Extra)},
		{"foundBeforeRepair.differing", float64(d.FoundBeforeRepair.Differing)},
	} {
		if f.v < 0 {
			return badRequest("INVALID_ATTRIBUTE", "downtime.%s is %v: it cannot be negative", f.name, f.v)
		}
	}
	return nil
}

// POST /api/agent/v1/migrations/{migrationId}/report: the final report after
// cutover; the migration becomes COMPLETE. Repeating it is harmless.
func (s *Server) handleMigrationReport(w http.ResponseWriter, r *http.Request, a *agent) error {
	ctx := r.Context()
	var rep api.Report
	if err := decodeJSON(w, r, maxAgentBodyBytes, &rep); err != nil {
		return err
	}
	if rep.Verification.Namespaces == nil {
		rep.Verification.Namespaces = []api.NamespaceVerification{}
	}
	if err := checkDowntime(rep.Downtime); err != nil {
		return err
	}
	id := r.PathValue("migrationId")
	err := s.store.Tx(ctx, func(st *store) error {
		m, err := agentMigration(ctx, st, a, id)
		if err != nil {
			return err
		}
		switch {
		case m.status == api.MigrationComplete:
			return nil
		case m.status != api.MigrationWorking || !m.cutoverRequested.Valid:
			return conflict("LIVE_MIGRATION_NOT_CUTTING_OVER", "live migration %s is %s and not cutting over", id, m.status)
		}
		now := time.Now()
		b, _ := json.Marshal(rep)
		if err := st.SetReport(ctx, id, string(b)); err != nil {
			return err
		}
		msg := "migration complete: " + strconv.FormatInt(rep.ChangesSynced, 10) + " changes synced, verification " + string(rep.Verification.Status)
		return s.finish(ctx, st, m, api.MigrationComplete, msg, api.EventCompleted, now)
	})
	if err != nil {
		return err
	}
	s.kickWebhooks()
	s.kickTimers()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
