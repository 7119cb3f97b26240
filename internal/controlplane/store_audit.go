package controlplane

import (
	"context"
	"time"
)

// The store's audit trail: one row per state-changing request and org.

// auditRecord is one audit row.
type auditRecord struct {
	id                               int64
	orgID, groupID                   string
	principalID, principalKind, name string
	remoteAddr, action, target       string
	status                           int
	createdAt                        time.Time
}

// RecordAudit appends a to the audit trail (a.id is assigned).
func (s *store) RecordAudit(ctx context.Context, a auditRecord) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO audit_events (org_id, group_id, principal_id, principal_kind, principal_name, remote_addr, action, target, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.orgID, a.groupID, a.principalID, a.principalKind, a.name, a.remoteAddr, a.action, a.target, a.status, ms(a.createdAt))
	return err
}

// AuditTrail lists org orgID's latest limit audit rows, newest first.
func (s *store) AuditTrail(ctx context.Context, orgID string, limit int) ([]auditRecord, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, group_id, principal_id, principal_kind, principal_name, remote_addr, action, target, status, created_at
		FROM audit_events WHERE org_id = ? ORDER BY id DESC LIMIT ?`, orgID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auditRecord
	for rows.Next() {
		a := auditRecord{orgID: orgID}
		var created int64
		if err := rows.Scan(&a.id, &a.groupID, &a.principalID, &a.principalKind, &a.name, &a.remoteAddr, &a.action, &a.target, &a.status, &created); err != nil {
			return nil, err
		}
		a.createdAt = fromMS(created)
		out = append(out, a)
	}
	return out, rows.Err()
}
