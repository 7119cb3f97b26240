package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's migration hosts (agents): their heartbeat deadlines,
// deployments and work items.

// Enqueue adds a work item of kind for agent agentID.
func (s *store) Enqueue(ctx context.Context, agentID string, kind api.WorkKind, validationID, migrationID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO work_items (agent_id, kind, validation_id, migration_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		agentID, kind, validationID, migrationID, ms(now))
	return err
}

// lostAgent is an agent whose heartbeats stopped: seenAt (unix ms) is when
// it was last heard from.
type lostAgent struct {
	id, host string
	seenAt   int64
}

// The agents whose heartbeat deadline runs: live, not revoked and not lost.
// The deadline counts from the later of the last call and since (the
// server's start) plus after.
const heartbeatDeadline = `max(last_seen_at, ?) + ?`

// AgentsToLose lists the agents whose heartbeat deadline passed at now.
func (s *store) AgentsToLose(ctx context.Context, since time.Time, after time.Duration, now time.Time) ([]lostAgent, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (lostAgent, error) {
		var a lostAgent
		err := rows.Scan(&a.id, &a.host, &a.seenAt)
		return a, err
	}, `SELECT id, hostname, last_seen_at FROM agents WHERE revoked = 0 AND lost = 0 AND `+heartbeatDeadline+` <= ?`, ms(since), after.Milliseconds(), ms(now))
}

// NextAgentLoss is the earliest heartbeat deadline.
func (s *store) NextAgentLoss(ctx context.Context, since time.Time, after time.Duration) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(`+heartbeatDeadline+`) FROM agents WHERE revoked = 0 AND lost = 0`, ms(since), after.Milliseconds())
}

// MarkAgentLost marks agent id lost.
func (s *store) MarkAgentLost(ctx context.Context, id string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE agents SET lost = 1 WHERE id = ?`, id)
	return err
}

// HasDeployment reports whether agent agentID reports a deployment named name.
func (s *store) HasDeployment(ctx context.Context, agentID, name string) (bool, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM deployments WHERE agent_id = ? AND name = ?`, agentID, name).Scan(&n)
	return n > 0, err
}

// AgentSeen records a call of agent id at now.
func (s *store) AgentSeen(ctx context.Context, id string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE agents SET last_seen_at = ? WHERE id = ?`, ms(now), id)
	return err
}

// AgentBack records a call of lost agent id at now: it is not lost any more.
func (s *store) AgentBack(ctx context.Context, id string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE agents SET last_seen_at = ?, lost = 0 WHERE id = ?`, ms(now), id)
	return err
}

// AgentOpenMigrations lists agent agentID's NEW and WORKING migrations.
func (s *store) AgentOpenMigrations(ctx context.Context, agentID string) ([]*migration, error) {
	return s.openMigrations(ctx, `agent_id = ?`, agentID)
}

// StalledMigrations lists agent agentID's open migrations that stalled
// while it was lost.
func (s *store) StalledMigrations(ctx context.Context, agentID string) ([]*migration, error) {
	return s.openMigrations(ctx, `agent_id = ? AND stalled = 1`, agentID)
}

// UnstallMigration clears migration id's stall.
func (s *store) UnstallMigration(ctx context.Context, id string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET stalled = 0, updated_at = ? WHERE id = ?`, ms(now), id)
	return err
}

// AckAllWork retires every pending work item of agent agentID.
func (s *store) AckAllWork(ctx context.Context, agentID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE work_items SET acked_at = ? WHERE agent_id = ? AND acked_at IS NULL`, ms(now), agentID)
	return err
}

// RequeueValidations queues a validate item for each of agent agentID's
// PENDING validations, oldest first.
func (s *store) RequeueValidations(ctx context.Context, agentID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO work_items (agent_id, kind, validation_id, created_at)
		SELECT agent_id, 'validate', id, ? FROM validations WHERE agent_id = ? AND status = 'PENDING' ORDER BY created_at`, ms(now), agentID)
	return err
}

// workItem is a pending item of an agent's work queue.
type workItem struct {
	id                        int64
	kind                      api.WorkKind
	validationID, migrationID string
}

// PendingWork lists agent agentID's un-acked work items, oldest first.
func (s *store) PendingWork(ctx context.Context, agentID string) ([]workItem, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (workItem, error) {
		var x workItem
		err := rows.Scan(&x.id, &x.kind, &x.validationID, &x.migrationID)
		return x, err
	}, `SELECT id, kind, validation_id, migration_id FROM work_items WHERE agent_id = ? AND acked_at IS NULL ORDER BY id`, agentID)
}

// AckWork retires work item id.
func (s *store) AckWork(ctx context.Context, id int64, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE work_items SET acked_at = ? WHERE id = ?`, ms(now), id)
	return err
}

// AckAgentWork retires agent agentID's work item id (again: harmless);
// errNotFound when the agent has no such item.
func (s *store) AckAgentWork(ctx context.Context, agentID string, id int64, now time.Time) error {
	res, err := s.q.ExecContext(ctx, `UPDATE work_items SET acked_at = coalesce(acked_at, ?) WHERE id = ? AND agent_id = ?`, ms(now), id, agentID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

// DeleteDeployments forgets the deployments agent agentID reported.
func (s *store) DeleteDeployments(ctx context.Context, agentID string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM deployments WHERE agent_id = ?`, agentID)
	return err
}

// SetDeployments replaces the deployments agent agentID reports with deps.
func (s *store) SetDeployments(ctx context.Context, agentID string, deps []api.Deployment) error {
	return s.Tx(ctx, func(st *store) error {
		if err := st.DeleteDeployments(ctx, agentID); err != nil {
			return err
		}
		for _, d := range deps {
			b, _ := json.Marshal(d)
			if _, err := st.q.ExecContext(ctx, `INSERT OR REPLACE INTO deployments (agent_id, name, doc) VALUES (?, ?, ?)`, agentID, d.Name, string(b)); err != nil {
				return err
			}
		}
		return nil
	})
}

// hostDeployment is a live agent and one deployment it reports (nil when it
// reports none).
type hostDeployment struct {
	host, version string
	deployment    *api.Deployment
}

// HostDeployments lists organization orgID's live agents with their
// deployments, by hostname and deployment name.
func (s *store) HostDeployments(ctx context.Context, orgID string) ([]hostDeployment, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT a.hostname, a.version, d.doc FROM agents a LEFT JOIN deployments d ON d.agent_id = a.id
		WHERE a.org_id = ? AND a.revoked = 0 ORDER BY a.hostname, d.name`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hostDeployment
	for rows.Next() {
		var h hostDeployment
		var doc sql.NullString
		if err := rows.Scan(&h.host, &h.version, &doc); err != nil {
			return nil, err
		}
		if doc.Valid {
			h.deployment = &api.Deployment{}
			if err := json.Unmarshal([]byte(doc.String), h.deployment); err != nil {
				return nil, err
			}
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Agents lists organization orgID's live agents by hostname.
func (s *store) Agents(ctx context.Context, orgID string) ([]api.Agent, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, hostname, version, registered_at, last_seen_at, lost FROM agents WHERE org_id = ? AND revoked = 0 ORDER BY hostname`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.Agent
	for rows.Next() {
		var a api.Agent
		var reg, seen int64
		if err := rows.Scan(&a.ID, &a.Hostname, &a.Version, &reg, &seen, &a.Lost); err != nil {
			return nil, err
		}
		a.RegisteredAt, a.LastSeenAt = fromMS(reg), fromMS(seen)
		out = append(out, a)
	}
	return out, rows.Err()
}

// LiveAgentIDs lists organization orgID's live (not revoked) agents.
func (s *store) LiveAgentIDs(ctx context.Context, orgID string) ([]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id FROM agents WHERE org_id = ? AND revoked = 0`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// RevokeAgent ends agent agentID's credential for reason why.
func (s *store) RevokeAgent(ctx context.Context, agentID, why string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE agents SET revoked = 1, revoked_at = ?, revoked_reason = ? WHERE id = ?`, ms(now), why, agentID)
	return err
}

// ReplaceLinkToken makes (id, secretHash, accessList) organization orgID's
// only link token.
func (s *store) ReplaceLinkToken(ctx context.Context, orgID, id, secretHash string, accessList []string, now time.Time) error {
	acl, _ := json.Marshal(accessList)
	return s.Tx(ctx, func(st *store) error {
		if _, err := st.DeleteLinkToken(ctx, orgID); err != nil {
			return err
		}
		_, err := st.q.ExecContext(ctx, `INSERT INTO link_tokens (id, org_id, secret_hash, access_list, created_at) VALUES (?, ?, ?, ?, ?)`,
			id, orgID, secretHash, string(acl), ms(now))
		return err
	})
}

// DeleteLinkToken deletes organization orgID's link token and reports
// whether it had one.
func (s *store) DeleteLinkToken(ctx context.Context, orgID string) (bool, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM link_tokens WHERE org_id = ?`, orgID)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// AccessList is the address prefixes organization orgID's link token
// allows (none: any address); errNotFound when the org has no link token.
func (s *store) AccessList(ctx context.Context, orgID string) ([]string, error) {
	var list string
	if err := s.q.QueryRowContext(ctx, `SELECT access_list FROM link_tokens WHERE org_id = ?`, orgID).Scan(&list); err != nil {
		return nil, notFoundIf(err)
	}
	var entries []string
	if err := json.Unmarshal([]byte(list), &entries); err != nil {
		return nil, err
	}
	return entries, nil
}
