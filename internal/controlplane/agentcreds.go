package controlplane

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// Why an agent was revoked (agents.revoked_reason).
const (
	revokedByLink     = "link"     // the org's link token was deleted
	revokedByOperator = "operator" // an owner revoked this agent
)

// Limits on held registrations, so a holder of the link token cannot fill
// the store or flood the operators with events.
const (
	maxHeldPerHost = 5
	maxHeldPerOrg  = 50
	// heldRetry is how often a held agent asks again.
	heldRetry = 5 * time.Second
)

// agentCred is what an agent secret turned out to be.
type agentCred struct {
	live *agent // the current credential of a live agent
	// Otherwise: "revoked", "replaced", "pending", "rejected" or "" (unknown).
	kind                            string
	agentID, regID, orgID, hostname string
	reason                          string // revoked_reason for "revoked"
	at                              int64  // when it was revoked, replaced or decided
}

// refusal is the answer to an agent call with a credential that is not a
// live agent's: what happened and what to do.
func (c agentCred) refusal() error {
	when := fromMS(c.at).Format(time.RFC3339)
	switch c.kind {
	case "revoked":
		if c.reason == revokedByLink {
			return errorf(http.StatusUnauthorized, "AGENT_REVOKED", "migration host %s was revoked when the organization's link token was deleted (%s): start the agent with the organization's current link token", c.hostname, when)
		}
		return errorf(http.StatusUnauthorized, "AGENT_REVOKED", "an organization owner revoked migration host %s (agent %s) at %s: it gets no work and no secrets. To link this host again, remove its agent state file and start the agent; an organization owner must then approve its registration", c.hostname, c.agentID, when)
	case "replaced":
		return errorf(http.StatusUnauthorized, "AGENT_CREDENTIAL_REPLACED", "an organization owner approved another registration of migration host %s at %s, which replaced this agent's credential: this agent gets no more work; stop it", c.hostname, when)
	case "pending":
		return errorf(http.StatusUnauthorized, "AGENT_REGISTRATION_PENDING", "registration %s of migration host %s waits for an organization owner's approval ('livemigrate agents approve %s' or the organization's Live Migration page); register again with this credential to learn the outcome", c.regID, c.hostname, c.regID)
	case "rejected":
		return errorf(http.StatusForbidden, "AGENT_REGISTRATION_REJECTED", "an organization owner rejected registration %s of migration host %s at %s: this host gets no work; ask an owner of the organization", c.regID, c.hostname, when)
	}
	return errorf(http.StatusUnauthorized, "UNAUTHORIZED", "unknown agent credential: start the agent again with the link token (it registers again)")
}

// stillValid checks, before secrets are handed out, that a's credential is
// still its live credential (an owner may have revoked or replaced it while
// a long-poll waited).
func (s *Server) stillValid(ctx context.Context, a *agent) error {
	c, err := s.store.LookupAgentCredential(ctx, a.secretHash)
	if err != nil {
		return err
	}
	if c.live == nil || c.live.id != a.id {
		return c.refusal()
	}
	return nil
}

// POST /api/agent/v1/register: link token → agent identity. A hostname
// without a live agent gets a new agent and its own secret. A request that
// carries the live agent's secret (a restarted agent) keeps the agent ID,
// the secret and so its migrations, and re-queues the work of its
// unfinished validations and migrations. Any other registration of a
// hostname with a live agent — or of one an operator revoked — is held
// (202) for an owner's decision and gets nothing; a takeover attempt is an
// event on the host's migrations and an audit-trail entry.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if err := s.register(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req api.AgentRegisterRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	invalid := errorf(http.StatusUnauthorized, "INVALID_LINK_TOKEN", "the link token is invalid, replaced or deleted")
	claims, err := decodeLinkToken(req.LinkToken)
	if err != nil {
		return invalid
	}
	var hash string
	hash, err = s.store.LinkTokenHash(ctx, claims.OrgID)
	if errors.Is(err, errNotFound) {
		return invalid
	}
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(tokenHash(claims.Secret))) != 1 {
		return invalid
	}
	if err := s.allowedIP(ctx, r, claims.OrgID); err != nil {
		return err
	}
	if err := checkHostname("hostname", req.Hostname); err != nil {
		return err
	}
	if len(req.AgentSecret) > 256 {
		return badRequest("INVALID_ATTRIBUTE", "agentSecret is longer than 256 bytes: it is not an agent credential").onField("agentSecret")
	}
	addr := r.RemoteAddr
	if a, ok := s.remoteAddr(r); ok {
		addr = a.String()
	}
	now := time.Now()
	reg := api.AgentRegistration{Status: api.RegistrationActive, OrgID: claims.OrgID,
		HeartbeatIntervalSeconds: int(s.timing.HeartbeatInterval / time.Second), ProgressIntervalSeconds: int(s.timing.ProgressInterval / time.Second),
		MaxWaitSeconds: int(s.timing.MaxWait / time.Second)}
	events := false
	err = s.store.Tx(ctx, func(st *store) error {
		if req.AgentSecret != "" {
			c, err := st.LookupAgentCredential(ctx, tokenHash(req.AgentSecret))
			if err != nil {
				return err
			}
			mine := c.orgID == claims.OrgID && c.hostname == req.Hostname
			switch {
			case c.live != nil && c.live.orgID == claims.OrgID && c.live.hostname == req.Hostname:
				return s.resume(ctx, st, c.live, req, now, &reg)
			case c.live != nil:
				return conflict("AGENT_CREDENTIAL_MISMATCH", "the agent credential belongs to another migration host or organization than %s: start the agent with the hostname and link token it registered with, or with another state directory", req.Hostname)
			case c.kind == "pending" && mine:
				reg = heldAnswer(reg, c.regID, req.AgentSecret, "registration "+c.regID+" of migration host "+req.Hostname+" still waits for an organization owner's approval")
				return nil
			case (c.kind == "revoked" && c.reason == revokedByOperator || c.kind == "replaced" || c.kind == "rejected") && mine:
				return c.refusal()
			}
			// Unknown (a new store), revoked with the link or another
			// host's: registers like a host without a credential.
		}
		liveID, seen, err := st.LiveAgent(ctx, claims.OrgID, req.Hostname)
		if err == nil {
			what := "without the host's agent credential"
			if req.AgentSecret != "" {
				what = "with a credential that is not the host's"
			}
			reason := "migration host " + req.Hostname + " has a live agent (last seen " + seen.Format(time.RFC3339) + ") and the registration from " + addr + " came " + what
			events = true
			return s.hold(ctx, st, claims.OrgID, req, liveID, addr, reason, now, &reg)
		}
		if !errors.Is(err, errNotFound) {
			return err
		}
		lastReason, err := st.LastRevokedReason(ctx, claims.OrgID, req.Hostname)
		if err != nil {
			return err
		}
		if lastReason == revokedByOperator {
			reason := "an organization owner revoked migration host " + req.Hostname + "'s agent; the registration from " + addr + " needs an owner's approval"
			return s.hold(ctx, st, claims.OrgID, req, "", addr, reason, now, &reg)
		}
		reg.AgentID, reg.AgentSecret = newID(now), "lma_"+randomToken(32)
		return st.InsertAgent(ctx, reg.AgentID, claims.OrgID, req.Hostname, req.Version, tokenHash(reg.AgentSecret), now)
	})
	if err != nil {
		return err
	}
	if reg.Status == api.RegistrationPending {
		if events {
			s.kickWebhooks()
		}
		s.logger.Warn("agent registration held", "registration_id", reg.RegistrationID, "hostname", req.Hostname, "org_id", claims.OrgID, "remote_addr", addr)
		writeJSON(w, http.StatusAccepted, reg)
		return nil
	}
	s.metrics.agentRegistrations.Inc()
	s.logger.Info("agent registered", "agent_id", reg.AgentID, "hostname", req.Hostname, "version", req.Version, "org_id", claims.OrgID)
	writeJSON(w, http.StatusOK, reg)
	return nil
}

// resume is the registration of live agent a with its own credential: the
// same agent and secret; stalled migrations resume and unfinished work is
// queued again.
func (s *Server) resume(ctx context.Context, st *store, a *agent, req api.AgentRegisterRequest, now time.Time, reg *api.AgentRegistration) error {
	if err := st.AgentRegistered(ctx, a.id, req.Version, now); err != nil {
		return err
	}
	if err := s.hostBack(ctx, st, a.id, a.hostname, now); err != nil {
		return err
	}
	reg.AgentID, reg.AgentSecret = a.id, req.AgentSecret
	return s.requeue(ctx, st, a.id, now)
}

func heldAnswer(reg api.AgentRegistration, id, secret, detail string) api.AgentRegistration {
	reg.Status, reg.RegistrationID, reg.AgentSecret, reg.RetryAfterSeconds = api.RegistrationPending, id, secret, int(heldRetry/time.Second)
	reg.Detail = detail + ": it gets no work and no secrets until an organization owner approves it ('livemigrate agents approve " + id +
		"' or the organization's Live Migration page). Keep this credential and register again with it."
	return reg
}

// hold records a registration that waits for an owner's decision; with
// agentID (the live agent it would replace) it is a takeover attempt: an
// event on each of that agent's open migrations (webhook, email). Both
// kinds are entries of the org's audit trail.
func (s *Server) hold(ctx context.Context, st *store, orgID string, req api.AgentRegisterRequest, agentID, addr, reason string, now time.Time, reg *api.AgentRegistration) error {
	perOrg, perHost, err := st.PendingRegistrations(ctx, orgID, req.Hostname)
	if err != nil {
		return err
	}
	if perHost >= maxHeldPerHost || perOrg >= maxHeldPerOrg {
		return errorf(http.StatusTooManyRequests, "TOO_MANY_PENDING_REGISTRATIONS", "migration host %s (or its organization) already has %d registrations waiting for an owner's decision: an organization owner must approve or reject them first", req.Hostname, max(perHost, perOrg))
	}
	id, secret := newID(now), "lma_"+randomToken(32)
	if err := st.InsertHeldRegistration(ctx, orgID, api.HeldRegistration{ID: id, Hostname: req.Hostname, Version: req.Version, AgentID: agentID,
		RemoteAddress: addr, Reason: reason, CreatedAt: now}, tokenHash(secret)); err != nil {
		return err
	}
	action := "MIGRATION_HOST_REGISTRATION_HELD"
	if agentID != "" {
		action = "MIGRATION_HOST_TAKEOVER_ATTEMPT"
		open, err := st.AgentOpenMigrations(ctx, agentID)
		if err != nil {
			return err
		}
		msg := "takeover attempt: " + reason + ". It was given nothing (no work, no secrets). If you replaced this host, approve registration " + id +
			" ('livemigrate agents approve " + id + "' or the organization's Live Migration page); otherwise reject it and replace the link token: someone else holds it."
		for _, m := range open {
			if err := s.addEvent(ctx, st, m, api.EventTakeoverAttempt, msg, now); err != nil {
				return err
			}
		}
	}
	if err := st.RecordAudit(ctx, auditRecord{orgID: orgID, principalID: id, principalKind: "agent", name: req.Hostname, remoteAddr: addr,
		action: action, target: agentPrefix + "/register", status: http.StatusAccepted, createdAt: now}); err != nil {
		return err
	}
	*reg = heldAnswer(*reg, id, secret, reason)
	return nil
}

// GET /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agentRegistrations
// (extension; organization owners): held registrations, newest first;
// ?status=PENDING|APPROVED|REJECTED filters.
func (s *Server) handleListRegistrations(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	switch api.RegistrationDecision(status) {
	case "", api.DecisionPending, api.DecisionApproved, api.DecisionRejected:
	default:
		return badRequest("INVALID_QUERY_PARAMETER", "status %q: want PENDING, APPROVED or REJECTED", status).onField("status")
	}
	regs, err := s.store.HeldRegistrations(ctx, orgID, api.RegistrationDecision(status))
	if err != nil {
		return err
	}
	page := api.Page[api.HeldRegistration]{Results: regs, TotalCount: len(regs)}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// POST …/x-agentRegistrations/{registrationId}/x-approve and …/x-reject
// (organization owners). Approving gives the registering host the agent
// identity it asked for: the live agent's (whose credential ends at once)
// or a new one.
func (s *Server) handleApproveRegistration(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.decide(w, r, p, api.DecisionApproved)
}

func (s *Server) handleRejectRegistration(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.decide(w, r, p, api.DecisionRejected)
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request, p *principal, decision api.RegistrationDecision) error {
	ctx := r.Context()
	orgID, id := r.PathValue("orgId"), r.PathValue("registrationId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	now := time.Now()
	var out api.HeldRegistration
	var replaced string
	err := s.store.Tx(ctx, func(st *store) error {
		h, hash, err := st.HeldRegistration(ctx, orgID, id)
		if errors.Is(err, errNotFound) {
			return errorf(http.StatusNotFound, "AGENT_REGISTRATION_NOT_FOUND", "agent registration %s not found", id).withParams(id)
		}
		if err != nil {
			return err
		}
		if h.Status != api.DecisionPending {
			return conflict("AGENT_REGISTRATION_DECIDED", "agent registration %s is already %s", id, h.Status).withParams(id)
		}
		if decision == api.DecisionApproved {
			old, err := st.LiveAgentSecretHash(ctx, h.AgentID)
			switch {
			case err == nil: // the takeover: the live agent's identity, a new credential
				if err := st.ReplaceAgentCredential(ctx, h.AgentID, old, hash, h.Version, now); err != nil {
					return err
				}
				replaced = h.AgentID
			case errors.Is(err, errNotFound):
				n, err := st.LiveAgents(ctx, orgID, h.Hostname)
				if err != nil {
					return err
				}
				if n > 0 {
					return conflict("MIGRATION_HOST_LINKED", "migration host %s has another live agent, registered after this request: revoke it first, or reject this registration", h.Hostname).withParams(h.Hostname)
				}
				h.AgentID = newID(now)
				if err := st.InsertAgent(ctx, h.AgentID, orgID, h.Hostname, h.Version, hash, now); err != nil {
					return err
				}
			default:
				return err
			}
		}
		if err := st.DecideRegistration(ctx, id, decision, p.name, h.AgentID, now); err != nil {
			return err
		}
		h.Status, h.DecidedAt, h.DecidedBy = decision, &now, p.name
		out = h
		return nil
	})
	if err != nil {
		return err
	}
	if replaced != "" {
		s.work.notify(replaced) // the replaced agent's long-poll ends with 401
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "agent registration decided", slog.String("registration_id", id), slog.String("decision", string(decision)), slog.String("by", p.name))
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DELETE /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agents/{agentId}
// (extension; organization owners): revokes one agent at once. Its
// unfinished migrations and validations fail; a later registration of its
// hostname needs an owner's approval.
func (s *Server) handleRevokeAgent(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID, id := r.PathValue("orgId"), r.PathValue("agentId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	err := s.store.Tx(ctx, func(st *store) error {
		live, err := st.IsLiveAgentOf(ctx, id, orgID)
		if err != nil {
			return err
		}
		if !live {
			return errorf(http.StatusNotFound, "AGENT_NOT_FOUND", "migration host agent %s not found (or already revoked)", id).withParams(id)
		}
		return s.revokeAgent(ctx, st, id, revokedByOperator, time.Now())
	})
	if err != nil {
		return err
	}
	s.work.notify(id)
	s.kickWebhooks()
	s.logger.Info("agent revoked", "agent_id", id, "org_id", orgID, "by", p.name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
