package controlplane

import (
	"context"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's agents (migration hosts), their deployments and work items.

// Enqueue adds a work item of kind for agent agentID.
func (s *store) Enqueue(ctx context.Context, agentID string, kind api.WorkKind, validationID, migrationID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO work_items (agent_id, kind, validation_id, migration_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		agentID, kind, validationID, migrationID, ms(now))
	return err
}
