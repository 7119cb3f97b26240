package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's outboxes: webhook deliveries and email notifications are rows
// that a delivery loop (runOutbox) picks when due and marks delivered,
// retried or failed. Email recipients are kept per project.

// minTime is the result of a `SELECT min(...)` of unix milliseconds:
// ok=false when no row matched.
func (s *store) minTime(ctx context.Context, query string, args ...any) (t time.Time, ok bool, err error) {
	var v sql.NullInt64
	if err := s.q.QueryRowContext(ctx, query, args...).Scan(&v); err != nil {
		return time.Time{}, false, err
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(v.Int64), true, nil
}

// QueueWebhookDelivery queues the delivery of event eventID to project
// groupID's webhook, when the project has one.
func (s *store) QueueWebhookDelivery(ctx context.Context, groupID string, eventID int64, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO webhook_deliveries (group_id, event_id, next_attempt_at)
		SELECT id, ?, ? FROM projects WHERE id = ? AND webhook_url != ''`, eventID, ms(now), groupID)
	return err
}

// Event loads migration event id.
func (s *store) Event(ctx context.Context, id int64) (api.Event, error) {
	var e api.Event
	var at int64
	err := s.q.QueryRowContext(ctx, `SELECT id, org_id, group_id, migration_id, type, message, created_at FROM events WHERE id = ?`, id).
		Scan(&e.ID, &e.OrgID, &e.GroupID, &e.MigrationID, &e.Type, &e.Message, &at)
	e.CreatedAt = fromMS(at)
	return e, notFoundIf(err)
}

// DueDeliveries lists up to limit webhook deliveries due at now, oldest
// first, with their project's webhook.
func (s *store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]delivery, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (delivery, error) {
		var d delivery
		err := rows.Scan(&d.id, &d.eventID, &d.attempts, &d.url, &d.urlEnc, &d.secret)
		return d, err
	}, `SELECT d.id, d.event_id, d.attempts, p.webhook_url, p.webhook_url_enc, p.webhook_secret FROM webhook_deliveries d
		JOIN projects p ON p.id = d.group_id WHERE d.delivered_at IS NULL AND d.failed = 0 AND d.next_attempt_at <= ? ORDER BY d.id LIMIT ?`, ms(now), limit)
}

// NextDeliveryAttempt is when the next pending webhook delivery is due
// (ok=false: none is pending).
func (s *store) NextDeliveryAttempt(ctx context.Context) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(next_attempt_at) FROM webhook_deliveries WHERE delivered_at IS NULL AND failed = 0`)
}

// MarkDelivered records delivery id's successful attempt at now.
func (s *store) MarkDelivered(ctx context.Context, id int64, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE webhook_deliveries SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?`, ms(now), id)
	return err
}

// attemptFailure is the outcome of a failed delivery attempt: the attempts
// made so far, whether it is given up, the error and when to try again.
type attemptFailure struct {
	attempts int
	failed   bool
	lastErr  string
	next     time.Time
}

// RecordDeliveryFailure records webhook delivery id's failed attempt.
func (s *store) RecordDeliveryFailure(ctx context.Context, id int64, f attemptFailure) error {
	_, err := s.q.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = ?, failed = ?, last_error = ?, next_attempt_at = ? WHERE id = ?`,
		f.attempts, f.failed, f.lastErr, ms(f.next), id)
	return err
}

// queuedEmail is an email notification to queue for a migration's project.
type queuedEmail struct {
	kind string
	// deadline and lead (unix ms) tell conditions of the same kind apart;
	// 0 for one-off notifications.
	deadline, lead int64
	subject, body  string
}

// QueueEmail queues n for m's project recipients, once per (migration,
// kind, deadline, lead): a second call for the same condition does nothing.
// Without recipients nothing is queued.
func (s *store) QueueEmail(ctx context.Context, m *migration, n queuedEmail, now time.Time) error {
	var addrs string
	err := s.q.QueryRowContext(ctx, `SELECT addresses FROM email_recipients WHERE group_id = ? AND addresses != '[]'`, m.groupID).Scan(&addrs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO email_notifications (migration_id, group_id, kind, deadline_at, lead_ms, recipients, subject, body, next_attempt_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, m.id, m.groupID, n.kind, n.deadline, n.lead, addrs, n.subject, n.body, ms(now), ms(now))
	return err
}

// The time-based email conditions, on WORKING migrations of projects with
// recipients that have not been notified yet: the expiry warning at lead
// before an uncut window closes (a shorter lead already sent for the same
// deadline counts), and the notice of a cutover running longer than after.
const (
	expiryWarningWhere = `status = 'WORKING' AND cutover_requested_at IS NULL AND expires_at > ?
		AND group_id IN (SELECT group_id FROM email_recipients WHERE addresses != '[]')
		AND NOT EXISTS (SELECT 1 FROM email_notifications n WHERE n.migration_id = migrations.id AND n.kind = ? AND n.deadline_at = migrations.expires_at AND n.lead_ms <= ?)`
	longCutoverWhere = `status = 'WORKING' AND cutover_requested_at IS NOT NULL
		AND group_id IN (SELECT group_id FROM email_recipients WHERE addresses != '[]')
		AND NOT EXISTS (SELECT 1 FROM email_notifications n WHERE n.migration_id = migrations.id AND n.kind = ?)`
)

// ExpiryWarningsDue lists the migrations due an expiry warning of lead at now.
func (s *store) ExpiryWarningsDue(ctx context.Context, now time.Time, lead time.Duration) ([]*migration, error) {
	return s.openMigrations(ctx, expiryWarningWhere+` AND expires_at - ? <= ?`,
		ms(now), kindExpiryWarn, lead.Milliseconds(), lead.Milliseconds(), ms(now))
}

// NextExpiryWarning is when the next expiry warning of lead after now is due.
func (s *store) NextExpiryWarning(ctx context.Context, now time.Time, lead time.Duration) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(expires_at - ?) FROM migrations WHERE `+expiryWarningWhere,
		lead.Milliseconds(), ms(now), kindExpiryWarn, lead.Milliseconds())
}

// LongCutoversDue lists the migrations whose cutover has run after at now
// without a notice.
func (s *store) LongCutoversDue(ctx context.Context, now time.Time, after time.Duration) ([]*migration, error) {
	return s.openMigrations(ctx, longCutoverWhere+` AND cutover_requested_at + ? <= ?`, kindCutoverLong, after.Milliseconds(), ms(now))
}

// NextLongCutover is when the next long-cutover notice is due.
func (s *store) NextLongCutover(ctx context.Context, after time.Duration) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(cutover_requested_at + ?) FROM migrations WHERE `+longCutoverWhere, after.Milliseconds(), kindCutoverLong)
}

// DueEmails lists up to limit email notifications due at now, oldest first.
func (s *store) DueEmails(ctx context.Context, now time.Time, limit int) ([]emailNote, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (emailNote, error) {
		var n emailNote
		var rcpt string
		if err := rows.Scan(&n.id, &n.migrationID, &n.kind, &rcpt, &n.subject, &n.body, &n.attempts, &n.createdAt); err != nil {
			return n, err
		}
		if err := json.Unmarshal([]byte(rcpt), &n.recipients); err != nil {
			return n, fmt.Errorf("email notification %d: recipients: %w", n.id, err)
		}
		return n, nil
	}, `SELECT id, migration_id, kind, recipients, subject, body, attempts, created_at FROM email_notifications
		WHERE sent_at IS NULL AND failed = 0 AND next_attempt_at <= ? ORDER BY id LIMIT ?`, ms(now), limit)
}

// NextEmailAttempt is when the next pending email notification is due
// (ok=false: none is pending).
func (s *store) NextEmailAttempt(ctx context.Context) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(next_attempt_at) FROM email_notifications WHERE sent_at IS NULL AND failed = 0`)
}

// MarkEmailSent records email notification id's successful attempt at now.
func (s *store) MarkEmailSent(ctx context.Context, id int64, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE email_notifications SET sent_at = ?, attempts = attempts + 1 WHERE id = ?`, ms(now), id)
	return err
}

// RecordEmailFailure records email notification id's failed attempt.
func (s *store) RecordEmailFailure(ctx context.Context, id int64, f attemptFailure) error {
	_, err := s.q.ExecContext(ctx, `UPDATE email_notifications SET attempts = ?, failed = ?, last_error = ?, next_attempt_at = ? WHERE id = ?`,
		f.attempts, f.failed, f.lastErr, ms(f.next), id)
	return err
}

// EmailRecipients loads project groupID's recipients; errNotFound when
// they were never set.
func (s *store) EmailRecipients(ctx context.Context, groupID string) ([]string, error) {
	var addrs string
	err := s.q.QueryRowContext(ctx, `SELECT addresses FROM email_recipients WHERE group_id = ?`, groupID).Scan(&addrs)
	if err != nil {
		return nil, notFoundIf(err)
	}
	out := []string{}
	if err := json.Unmarshal([]byte(addrs), &out); err != nil {
		return nil, fmt.Errorf("email recipients of project %s: %w", groupID, err)
	}
	return out, nil
}

// SetEmailRecipients replaces project groupID's recipients (empty: none).
func (s *store) SetEmailRecipients(ctx context.Context, groupID string, addrs []string, now time.Time) error {
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO email_recipients (group_id, addresses, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (group_id) DO UPDATE SET addresses = excluded.addresses, updated_at = excluded.updated_at`, groupID, string(b), ms(now))
	return err
}
