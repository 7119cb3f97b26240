package controlplane

import (
	"context"
	"database/sql"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's migrations, validations and migrations' events.

const migrationColumns = `id, org_id, group_id, source_group_id, agent_id, host, destination_cluster, request_enc, status, ready, lag_seconds,
	progress, error_message, window_started_at, expires_at, expiry_warned, cutover_requested_at, stalled, report, created_at, updated_at, completed_at,
	coalesce((SELECT lost FROM agents WHERE agents.id = migrations.agent_id), 0),
	coalesce((SELECT last_seen_at FROM agents WHERE agents.id = migrations.agent_id), 0)`

func scanMigration(row rowScanner) (*migration, error) {
	m := &migration{}
	err := row.Scan(&m.id, &m.orgID, &m.groupID, &m.sourceGroupID, &m.agentID, &m.host, &m.destination, &m.requestEnc, &m.status, &m.ready, &m.lag,
		&m.progress, &m.errorMessage, &m.windowStarted, &m.expiresAt, &m.expiryWarned, &m.cutoverRequested, &m.stalled, &m.report, &m.createdAt, &m.updatedAt, &m.completedAt,
		&m.hostLost, &m.hostSeenAt)
	return m, err
}

// Migration loads migration id; errNotFound when there is none.
func (s *store) Migration(ctx context.Context, id string) (*migration, error) {
	m, err := scanMigration(s.q.QueryRowContext(ctx, `SELECT `+migrationColumns+` FROM migrations WHERE id = ?`, id))
	return m, notFoundIf(err)
}

// openMigrations lists the NEW and WORKING migrations matching where, oldest
// first.
func (s *store) openMigrations(ctx context.Context, where string, args ...any) ([]*migration, error) {
	return queryAll(ctx, s.q, scanMigration, `SELECT `+migrationColumns+` FROM migrations WHERE status IN ('NEW', 'WORKING') AND `+where+` ORDER BY created_at, id`, args...)
}

// FinishMigration moves migration id to the terminal status with error
// message errMsg.
func (s *store) FinishMigration(ctx context.Context, id string, status api.MigrationStatus, errMsg string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET status = ?, error_message = ?, ready = 0, completed_at = ?, updated_at = ? WHERE id = ?`,
		status, errMsg, ms(now), ms(now), id)
	return err
}

// AddEvent appends an event of typ to m's log and returns its id.
func (s *store) AddEvent(ctx context.Context, m *migration, typ api.EventType, msg string, now time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO events (org_id, group_id, migration_id, type, message, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		m.orgID, m.groupID, m.id, typ, msg, ms(now))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Events lists migration migrationID's events, oldest first.
func (s *store) Events(ctx context.Context, migrationID string) ([]api.Event, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, org_id, group_id, migration_id, type, message, created_at FROM events WHERE migration_id = ? ORDER BY id`, migrationID)
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

// sealedRequest is a validation's or migration's sealed request, project,
// destination cluster and status.
type sealedRequest struct {
	requestEnc                   []byte
	groupID, destination, status string
}

// ValidationRequest loads validation id's sealed request and status;
// errNotFound when there is none.
func (s *store) ValidationRequest(ctx context.Context, id string) (sealedRequest, error) {
	var v sealedRequest
	err := s.q.QueryRowContext(ctx, `SELECT request_enc, group_id, destination_cluster, status FROM validations WHERE id = ?`, id).Scan(&v.requestEnc, &v.groupID, &v.destination, &v.status)
	return v, notFoundIf(err)
}

// The cutover-window deadlines, on WORKING migrations whose cutover has not
// been asked for.
const uncutWindow = `status = 'WORKING' AND cutover_requested_at IS NULL`

// LapsedWindows lists the migrations whose cutover window closed at or
// before now.
func (s *store) LapsedWindows(ctx context.Context, now time.Time) ([]*migration, error) {
	return s.openMigrations(ctx, uncutWindow+` AND expires_at <= ?`, ms(now))
}

// NextWindowExpiry is when the next cutover window closes.
func (s *store) NextWindowExpiry(ctx context.Context) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(expires_at) FROM migrations WHERE `+uncutWindow)
}

// WindowWarningsDue lists the migrations not yet warned whose cutover window
// closes within before of now.
func (s *store) WindowWarningsDue(ctx context.Context, before time.Duration, now time.Time) ([]*migration, error) {
	return s.openMigrations(ctx, uncutWindow+` AND expiry_warned = 0 AND expires_at - ? <= ?`, before.Milliseconds(), ms(now))
}

// NextWindowWarning is when the next migration not yet warned comes within
// before of its window's close.
func (s *store) NextWindowWarning(ctx context.Context, before time.Duration) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(expires_at - ?) FROM migrations WHERE `+uncutWindow+` AND expiry_warned = 0`, before.Milliseconds())
}

// SetExpiryWarned records that migration id's expiry warning was given.
func (s *store) SetExpiryWarned(ctx context.Context, id string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET expiry_warned = 1 WHERE id = ?`, id)
	return err
}

// MigrationsToStall lists agent agentID's open migrations not stalled yet.
func (s *store) MigrationsToStall(ctx context.Context, agentID string) ([]*migration, error) {
	return s.openMigrations(ctx, `agent_id = ? AND stalled = 0`, agentID)
}

// StallMigration marks migration id stalled: not ready for cutover and no
// lag until a fresh progress report.
func (s *store) StallMigration(ctx context.Context, id string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET stalled = 1, ready = 0, lag_seconds = NULL, updated_at = ? WHERE id = ?`, ms(now), id)
	return err
}

// CreateMigration inserts m with its sealed request; errExists when an open
// migration targets the same destination cluster.
func (s *store) CreateMigration(ctx context.Context, m *migration, requestEnc []byte) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO migrations (id, org_id, group_id, source_group_id, agent_id, host, destination_cluster, request_enc, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.id, m.orgID, m.groupID, m.sourceGroupID, m.agentID, m.host, m.destination, requestEnc, m.status, m.createdAt, m.updatedAt)
	return existsIf(err)
}

// OpenMigrationTo is the id of the NEW or WORKING migration to cluster of
// project groupID; errNotFound when there is none.
func (s *store) OpenMigrationTo(ctx context.Context, groupID, cluster string) (string, error) {
	var id string
	err := s.q.QueryRowContext(ctx, `SELECT id FROM migrations WHERE group_id = ? AND destination_cluster = ? AND status IN ('NEW', 'WORKING')`, groupID, cluster).Scan(&id)
	return id, notFoundIf(err)
}

// ProjectMigrations lists project groupID's migrations, newest first.
func (s *store) ProjectMigrations(ctx context.Context, groupID string) ([]*migration, error) {
	return queryAll(ctx, s.q, scanMigration, `SELECT `+migrationColumns+` FROM migrations WHERE group_id = ? ORDER BY created_at DESC, id DESC`, groupID)
}

// StartCutover records that the cutover of migration id was asked for at now.
func (s *store) StartCutover(ctx context.Context, id string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET cutover_requested_at = ?, updated_at = ? WHERE id = ?`, ms(now), ms(now), id)
	return err
}

// ExtendWindow sets migration id's cutover window to close at expires, and
// whether its expiry warning counts as given.
func (s *store) ExtendWindow(ctx context.Context, id string, expires time.Time, warned bool, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET expires_at = ?, expiry_warned = ?, updated_at = ? WHERE id = ?`, ms(expires), warned, ms(now), id)
	return err
}

// CreateValidation inserts validation v of organization orgID, run by agent
// agentID against cluster, with its sealed request.
func (s *store) CreateValidation(ctx context.Context, v api.Validation, orgID, agentID, cluster string, requestEnc []byte, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO validations (id, org_id, group_id, source_group_id, agent_id, destination_cluster, request_enc, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, v.ID, orgID, v.GroupID, v.SourceGroupID, agentID, cluster, requestEnc, v.Status, ms(now), ms(now))
	return err
}

// Validation loads validation id of project groupID and its checks as
// stored (a JSON array); errNotFound when there is none.
func (s *store) Validation(ctx context.Context, groupID, id string) (v api.Validation, checksJSON string, err error) {
	err = s.q.QueryRowContext(ctx, `SELECT id, group_id, source_group_id, status, error_message, checks FROM validations WHERE id = ? AND group_id = ?`, id, groupID).
		Scan(&v.ID, &v.GroupID, &v.SourceGroupID, &v.Status, &v.ErrorMessage, &checksJSON)
	return v, checksJSON, notFoundIf(err)
}

// progressUpdate is what a progress report changes in its migration.
type progressUpdate struct {
	status                   api.MigrationStatus
	ready                    bool
	lagSeconds               int64
	progress                 string // the report, JSON
	windowStarted, expiresAt sql.NullInt64
}

// SetProgress records progress p of migration id at now.
func (s *store) SetProgress(ctx context.Context, id string, p progressUpdate, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET status = ?, ready = ?, lag_seconds = ?, progress = ?, window_started_at = ?, expires_at = ?, updated_at = ? WHERE id = ?`,
		p.status, p.ready, p.lagSeconds, p.progress, p.windowStarted, p.expiresAt, ms(now), id)
	return err
}

// SetReport records migration id's final report (JSON); it has no lag any more.
func (s *store) SetReport(ctx context.Context, id, report string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE migrations SET report = ?, lag_seconds = NULL WHERE id = ?`, report, id)
	return err
}

// MigrationRequest loads migration id's sealed request and status;
// errNotFound when there is none.
func (s *store) MigrationRequest(ctx context.Context, id string) (sealedRequest, error) {
	var v sealedRequest
	err := s.q.QueryRowContext(ctx, `SELECT request_enc, group_id, destination_cluster, status FROM migrations WHERE id = ?`, id).Scan(&v.requestEnc, &v.groupID, &v.destination, &v.status)
	return v, notFoundIf(err)
}

// FinishValidation records the result of agent agentID's PENDING validation
// id; done=false when there is no such PENDING validation.
func (s *store) FinishValidation(ctx context.Context, id, agentID string, res api.ValidationResult, checks string, now time.Time) (done bool, err error) {
	out, err := s.q.ExecContext(ctx, `UPDATE validations SET status = ?, error_message = ?, checks = ?, updated_at = ? WHERE id = ? AND agent_id = ? AND status = 'PENDING'`,
		res.Status, res.ErrorMessage, checks, ms(now), id, agentID)
	if err != nil {
		return false, err
	}
	n, _ := out.RowsAffected()
	return n > 0, nil
}

// AgentValidationStatus is the status of agent agentID's validation id;
// errNotFound when there is none.
func (s *store) AgentValidationStatus(ctx context.Context, id, agentID string) (string, error) {
	var status string
	err := s.q.QueryRowContext(ctx, `SELECT status FROM validations WHERE id = ? AND agent_id = ?`, id, agentID).Scan(&status)
	return status, notFoundIf(err)
}

// FailPendingValidations fails agent agentID's PENDING validations with msg.
func (s *store) FailPendingValidations(ctx context.Context, agentID, msg string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE validations SET status = 'FAILED', error_message = ?, updated_at = ? WHERE agent_id = ? AND status = 'PENDING'`, msg, ms(now), agentID)
	return err
}
