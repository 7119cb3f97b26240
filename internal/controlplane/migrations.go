package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// migration is a row of the migrations table.
type migration struct {
	id, orgID, groupID, sourceGroupID, agentID, host, destination string
	requestEnc                                                    []byte
	status                                                        api.MigrationStatus
	ready                                                         bool
	lag                                                           sql.NullInt64
	progress                                                      sql.NullString
	errorMessage                                                  string
	windowStarted, expiresAt, cutoverRequested, completedAt       sql.NullInt64
	expiryWarned, stalled                                         bool
	report                                                        sql.NullString
	createdAt, updatedAt                                          int64
	// hostLost and hostSeenAt are the migration host's (agents.lost and
	// agents.last_seen_at), read with the row.
	hostLost   bool
	hostSeenAt int64
}

const migrationColumns = `id, org_id, group_id, source_group_id, agent_id, host, destination_cluster, request_enc, status, ready, lag_seconds,
	progress, error_message, window_started_at, expires_at, expiry_warned, cutover_requested_at, stalled, report, created_at, updated_at, completed_at,
	coalesce((SELECT lost FROM agents WHERE agents.id = migrations.agent_id), 0),
	coalesce((SELECT last_seen_at FROM agents WHERE agents.id = migrations.agent_id), 0)`

func scanMigration(row interface{ Scan(...any) error }) (*migration, error) {
	m := &migration{}
	err := row.Scan(&m.id, &m.orgID, &m.groupID, &m.sourceGroupID, &m.agentID, &m.host, &m.destination, &m.requestEnc, &m.status, &m.ready, &m.lag,
		&m.progress, &m.errorMessage, &m.windowStarted, &m.expiresAt, &m.expiryWarned, &m.cutoverRequested, &m.stalled, &m.report, &m.createdAt, &m.updatedAt, &m.completedAt,
		&m.hostLost, &m.hostSeenAt)
	return m, err
}

func loadMigration(ctx context.Context, q querier, id string) (*migration, error) {
	return scanMigration(q.QueryRowContext(ctx, `SELECT `+migrationColumns+` FROM migrations WHERE id = ?`, id))
}

// activeMigrations returns NEW and WORKING migrations matching where.
func activeMigrations(ctx context.Context, q querier, where string, args ...any) ([]*migration, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+migrationColumns+` FROM migrations WHERE status IN ('NEW', 'WORKING') AND `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*migration
	for rows.Next() {
		m, err := scanMigration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (m *migration) active() bool {
	return m.status == api.MigrationNew || m.status == api.MigrationWorking
}

// api returns the Atlas view of m. While the migration host is lost the
// migration is not ready for cutover and has no lag: the last values the
// host reported are not live (x-progress still has them, with reportedAt).
func (m *migration) api() api.Migration {
	out := api.Migration{ID: m.id, Status: m.status, MigrationHosts: []string{m.host}}
	if m.lostHost() {
		out.HostLost = &api.HostLoss{Hostname: m.host, LastSeenAt: fromMS(m.hostSeenAt), DuringCutover: m.cutoverRequested.Valid, Detail: m.hostLostDetail()}
		return out
	}
	syncing := m.status == api.MigrationWorking && !m.cutoverRequested.Valid
	out.ReadyForCutover = syncing && m.ready
	if syncing && m.lag.Valid {
		lag := m.lag.Int64
		out.LagTimeSeconds = &lag
	}
	return out
}

// lostHost reports whether m is open and its migration host is lost.
func (m *migration) lostHost() bool { return m.active() && m.hostLost }

// hostLostDetail says that m's host is lost, since when, and what to do.
func (m *migration) hostLostDetail() string {
	since := fromMS(m.hostSeenAt).Format(time.RFC3339)
	todo := "restart `livemigrate agent` on " + m.host + " with the same link token, or check that " + m.host + " can reach this control plane"
	if m.cutoverRequested.Valid {
		return "migration host " + m.host + " was lost during the cutover: nothing heard from it since " + since +
			". The cutover resumes where it left off when the host is back: " + todo + "."
	}
	return "migration host " + m.host + " is lost: nothing heard from it since " + since +
		". The migration is not failed; it resumes where it left off when the host is back: " + todo + "."
}

// errHostLost refuses an operation on m while its host is lost.
func errHostLost(m *migration, what string) *apiError {
	return conflict("MIGRATION_HOST_LOST", "live migration %s cannot %s now: %s", m.id, what, m.hostLostDetail()).withParams(m.id, m.host)
}

func (m *migration) progressView() api.MigrationProgress {
	v := api.MigrationProgress{Migration: m.api(), Stalled: m.lostHost() || (m.stalled && m.active()), ErrorMessage: m.errorMessage,
		CreatedAt: fromMS(m.createdAt), UpdatedAt: fromMS(m.updatedAt), CutoverRequestedAt: nullMS(m.cutoverRequested),
		DestinationClusterName: m.destination, CompletedAt: nullMS(m.completedAt)}
	if m.progress.Valid {
		var p api.Progress
		if json.Unmarshal([]byte(m.progress.String), &p) == nil {
			v.Progress = &p
		}
	}
	if m.windowStarted.Valid && m.expiresAt.Valid {
		v.CutoverWindow = &api.CutoverWindow{StartedAt: fromMS(m.windowStarted.Int64), ExpiresAt: fromMS(m.expiresAt.Int64)}
	}
	return v
}

// webhookEvents are the event types that are also sent to the project's webhook.
var webhookEvents = map[api.EventType]bool{
	api.EventReadyForCutover: true, api.EventExpiryWarning: true, api.EventFailed: true,
	api.EventExpired: true, api.EventCompleted: true, api.EventTakeoverAttempt: true,
}

// addEvent appends to m's event log and, for webhook types, queues a
// delivery to the project's webhook. Call kickWebhooks after commit.
func (s *Server) addEvent(ctx context.Context, tx querier, m *migration, typ api.EventType, msg string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO events (org_id, group_id, migration_id, type, message, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		m.orgID, m.groupID, m.id, typ, msg, ms(now))
	if err != nil {
		return err
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "migration event", slog.String("migration_id", m.id), slog.String("event", string(typ)), slog.String("message", msg))
	s.metrics.events.WithLabelValues(string(typ)).Inc()
	if err := s.emailOnEvent(ctx, tx, m, typ, msg, now); err != nil {
		return err
	}
	if !webhookEvents[typ] {
		return nil
	}
	eventID, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (group_id, event_id, next_attempt_at)
		SELECT id, ?, ? FROM projects WHERE id = ? AND webhook_url != ''`, eventID, ms(now), m.groupID)
	return err
}

// finish moves m to a terminal status with an event; msg becomes the
// event's message and, unless COMPLETE, the migration's error message. The
// migration's destination user is marked for dropping.
func (s *Server) finish(ctx context.Context, tx querier, m *migration, status api.MigrationStatus, msg string, typ api.EventType, now time.Time) error {
	errMsg := msg
	if status == api.MigrationComplete {
		errMsg = ""
	}
	_, err := tx.ExecContext(ctx, `UPDATE migrations SET status = ?, error_message = ?, ready = 0, completed_at = ?, updated_at = ? WHERE id = ?`,
		status, errMsg, ms(now), ms(now), m.id)
	if err != nil {
		return err
	}
	m.status, m.errorMessage = status, errMsg
	s.metrics.migrationsFinished.WithLabelValues(string(status)).Inc()
	if err := s.addEvent(ctx, tx, m, typ, msg, now); err != nil {
		return err
	}
	return s.retireDestinationUser(ctx, tx, m, now)
}

// enqueue adds a work item for agentID; call s.work.notify(agentID) after commit.
func enqueue(ctx context.Context, tx querier, agentID string, kind api.WorkKind, validationID, migrationID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO work_items (agent_id, kind, validation_id, migration_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		agentID, kind, validationID, migrationID, ms(now))
	return err
}

func (s *Server) listEvents(ctx context.Context, migrationID string) ([]api.Event, error) {
	rows, err := s.store.db.QueryContext(ctx, `SELECT id, org_id, group_id, migration_id, type, message, created_at FROM events WHERE migration_id = ? ORDER BY id`, migrationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []api.Event{}
	for rows.Next() {
		var e api.Event
		var at int64
		if err := rows.Scan(&e.ID, &e.OrgID, &e.GroupID, &e.MigrationID, &e.Type, &e.Message, &at); err != nil {
			return nil, err
		}
		e.CreatedAt = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
