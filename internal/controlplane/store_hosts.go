package controlplane

import (
	"context"
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
	rows, err := s.q.QueryContext(ctx, `SELECT id, hostname, last_seen_at FROM agents WHERE revoked = 0 AND lost = 0 AND `+heartbeatDeadline+` <= ?`, ms(since), after.Milliseconds(), ms(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lostAgent
	for rows.Next() {
		var a lostAgent
		if err := rows.Scan(&a.id, &a.host, &a.seenAt); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
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

// HostAgent is the id of organization orgID's live (not revoked) agent on
// host; errNotFound when there is none.
func (s *store) HostAgent(ctx context.Context, orgID, host string) (string, error) {
	var id string
	err := s.q.QueryRowContext(ctx, `SELECT id FROM agents WHERE org_id = ? AND hostname = ? AND revoked = 0`, orgID, host).Scan(&id)
	return id, notFoundIf(err)
}

// HasDeployment reports whether agent agentID reports a deployment named name.
func (s *store) HasDeployment(ctx context.Context, agentID, name string) (bool, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM deployments WHERE agent_id = ? AND name = ?`, agentID, name).Scan(&n)
	return n > 0, err
}
