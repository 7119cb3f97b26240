package controlplane

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's agent credentials (agentcreds.go): live agents' secrets,
// credentials an approval replaced, and registrations held for an owner.

// LookupAgentCredential finds what the agent secret with hash h is: a live
// agent's, a revoked agent's, a replaced one, a held registration's, or
// nothing known (kind "").
func (s *store) LookupAgentCredential(ctx context.Context, h string) (agentCred, error) {
	var c agentCred
	var a agent
	var revoked bool
	var revokedAt sql.NullInt64
	err := s.q.QueryRowContext(ctx, `SELECT id, org_id, hostname, lost, revoked, revoked_reason, revoked_at FROM agents WHERE secret_hash = ?`, h).
		Scan(&a.id, &a.orgID, &a.hostname, &a.lost, &revoked, &c.reason, &revokedAt)
	switch {
	case err == nil && !revoked:
		a.secretHash = h
		return agentCred{live: &a}, nil
	case err == nil:
		c.kind, c.agentID, c.orgID, c.hostname, c.at = "revoked", a.id, a.orgID, a.hostname, revokedAt.Int64
		return c, nil
	case !errors.Is(err, sql.ErrNoRows):
		return c, err
	}
	err = s.q.QueryRowContext(ctx, `SELECT r.agent_id, r.retired_at, a.org_id, a.hostname FROM agent_retired_credentials r JOIN agents a ON a.id = r.agent_id
		WHERE r.secret_hash = ?`, h).Scan(&c.agentID, &c.at, &c.orgID, &c.hostname)
	if err == nil {
		c.kind = "replaced"
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return c, err
	}
	var status string
	var decided sql.NullInt64
	err = s.q.QueryRowContext(ctx, `SELECT id, org_id, hostname, status, decided_at FROM agent_registrations WHERE secret_hash = ?`, h).
		Scan(&c.regID, &c.orgID, &c.hostname, &status, &decided)
	if errors.Is(err, sql.ErrNoRows) {
		return agentCred{}, nil
	}
	if err != nil {
		return c, err
	}
	c.at = decided.Int64
	switch api.RegistrationDecision(status) {
	case api.DecisionPending:
		c.kind = "pending"
	case api.DecisionRejected:
		c.kind = "rejected"
	default: // approved, then replaced or revoked: found above
		return agentCred{}, nil
	}
	return c, nil
}

// LiveAgent is the live agent of hostname in org orgID and its last call;
// errNotFound when there is none.
func (s *store) LiveAgent(ctx context.Context, orgID, hostname string) (id string, lastSeen time.Time, err error) {
	var seen int64
	err = s.q.QueryRowContext(ctx, `SELECT id, last_seen_at FROM agents WHERE org_id = ? AND hostname = ? AND revoked = 0`, orgID, hostname).Scan(&id, &seen)
	return id, fromMS(seen), notFoundIf(err)
}

// LastRevokedReason is why the latest agent of hostname was revoked ("" if
// it was not, or there is none).
func (s *store) LastRevokedReason(ctx context.Context, orgID, hostname string) (string, error) {
	var why string
	err := s.q.QueryRowContext(ctx, `SELECT revoked_reason FROM agents WHERE org_id = ? AND hostname = ? ORDER BY registered_at DESC, rowid DESC LIMIT 1`, orgID, hostname).Scan(&why)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return why, err
}

// InsertAgent records a new live agent whose credential hashes to hash.
func (s *store) InsertAgent(ctx context.Context, id, orgID, hostname, version, hash string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO agents (id, org_id, hostname, version, secret_hash, registered_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id, orgID, hostname, version, hash, ms(now), ms(now))
	return err
}

// AgentRegistered records a registration of live agent id with its own
// credential: its version, a call now, not lost.
func (s *store) AgentRegistered(ctx context.Context, id, version string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE agents SET version = ?, last_seen_at = ?, lost = 0 WHERE id = ?`, version, ms(now), id)
	return err
}

// PendingRegistrations counts the held registrations of org orgID waiting
// for a decision, and those of hostname.
func (s *store) PendingRegistrations(ctx context.Context, orgID, hostname string) (perOrg, perHost int, err error) {
	err = s.q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(hostname = ?), 0) FROM agent_registrations WHERE org_id = ? AND status = 'PENDING'`, hostname, orgID).Scan(&perOrg, &perHost)
	return perOrg, perHost, err
}

// InsertHeldRegistration records h (PENDING) of org orgID with the pending
// credential's hash.
func (s *store) InsertHeldRegistration(ctx context.Context, orgID string, h api.HeldRegistration, hash string) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO agent_registrations (id, org_id, hostname, version, agent_id, secret_hash, remote_addr, reason, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'PENDING', ?)`, h.ID, orgID, h.Hostname, h.Version, h.AgentID, hash, h.RemoteAddress, h.Reason, ms(h.CreatedAt))
	return err
}

// HeldRegistration loads registration id of org orgID and its credential's
// hash; errNotFound when there is none.
func (s *store) HeldRegistration(ctx context.Context, orgID, id string) (api.HeldRegistration, string, error) {
	var h api.HeldRegistration
	var hash string
	var created int64
	var decided sql.NullInt64
	err := s.q.QueryRowContext(ctx, `SELECT id, hostname, version, agent_id, remote_addr, reason, status, created_at, decided_at, decided_by, secret_hash
		FROM agent_registrations WHERE id = ? AND org_id = ?`, id, orgID).
		Scan(&h.ID, &h.Hostname, &h.Version, &h.AgentID, &h.RemoteAddress, &h.Reason, &h.Status, &created, &decided, &h.DecidedBy, &hash)
	h.CreatedAt, h.DecidedAt = fromMS(created), nullMS(decided)
	return h, hash, notFoundIf(err)
}

// HeldRegistrations lists org orgID's registrations (status "" for all),
// newest first, at most 500.
func (s *store) HeldRegistrations(ctx context.Context, orgID string, status api.RegistrationDecision) ([]api.HeldRegistration, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id FROM agent_registrations WHERE org_id = ? AND (? = '' OR status = ?) ORDER BY created_at DESC, id DESC LIMIT 500`, orgID, status, status)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []api.HeldRegistration{}
	for _, id := range ids {
		h, _, err := s.HeldRegistration(ctx, orgID, id)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// LiveAgentSecretHash is live agent id's credential hash; errNotFound when
// the agent is revoked or unknown.
func (s *store) LiveAgentSecretHash(ctx context.Context, id string) (string, error) {
	var h string
	err := s.q.QueryRowContext(ctx, `SELECT secret_hash FROM agents WHERE id = ? AND revoked = 0`, id).Scan(&h)
	return h, notFoundIf(err)
}

// ReplaceAgentCredential gives agent id the credential newHash (an approved
// registration's) and keeps oldHash as replaced.
func (s *store) ReplaceAgentCredential(ctx context.Context, id, oldHash, newHash, version string, now time.Time) error {
	if _, err := s.q.ExecContext(ctx, `INSERT INTO agent_retired_credentials (secret_hash, agent_id, reason, retired_at) VALUES (?, ?, 'replaced', ?)`, oldHash, id, ms(now)); err != nil {
		return err
	}
	_, err := s.q.ExecContext(ctx, `UPDATE agents SET secret_hash = ?, version = ?, registered_at = ? WHERE id = ?`, newHash, version, ms(now), id)
	return err
}

// LiveAgents counts hostname's live agents in org orgID (0 or 1).
func (s *store) LiveAgents(ctx context.Context, orgID, hostname string) (int, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM agents WHERE org_id = ? AND hostname = ? AND revoked = 0`, orgID, hostname).Scan(&n)
	return n, err
}

// DecideRegistration records the decision on registration id.
func (s *store) DecideRegistration(ctx context.Context, id string, decision api.RegistrationDecision, by, agentID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE agent_registrations SET status = ?, decided_at = ?, decided_by = ?, agent_id = ? WHERE id = ?`, decision, ms(now), by, agentID, id)
	return err
}

// IsLiveAgentOf reports whether agent id is live and of org orgID.
func (s *store) IsLiveAgentOf(ctx context.Context, id, orgID string) (bool, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM agents WHERE id = ? AND org_id = ? AND revoked = 0`, id, orgID).Scan(&n)
	return n > 0, err
}

// LinkTokenHash is the hash of org orgID's link-token secret; errNotFound
// when the org has no link token.
func (s *store) LinkTokenHash(ctx context.Context, orgID string) (string, error) {
	var h string
	err := s.q.QueryRowContext(ctx, `SELECT secret_hash FROM link_tokens WHERE org_id = ?`, orgID).Scan(&h)
	return h, notFoundIf(err)
}
