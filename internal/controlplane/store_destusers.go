package controlplane

import (
	"context"
	"time"
)

// The destination users of migrations and validations (destuser.go): one
// row per owner, created with it, picked by the destination-user loop when
// due to be created or dropped.

// InsertDestinationUser records u, due at now.
func (s *store) InsertDestinationUser(ctx context.Context, u destUser, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO destination_users (owner_id, kind, group_id, cluster, username, password_enc, state, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.ownerID, u.kind, u.groupID, u.cluster, u.name, u.passwordEnc, u.state, ms(now), ms(now), ms(now))
	return err
}

// RetireDestinationUser marks owner id's user DROPPING (due now) when it
// exists or may exist, and DROPPED when its create never reached the server.
func (s *store) RetireDestinationUser(ctx context.Context, id string, now time.Time) error {
	if _, err := s.q.ExecContext(ctx, `UPDATE destination_users SET state = ?, attempts = 0, next_attempt_at = ?, updated_at = ?
		WHERE owner_id = ? AND (state = ? OR (state = ? AND sent = 1))`, userDropping, ms(now), ms(now), id, userActive, userPending); err != nil {
		return err
	}
	_, err := s.q.ExecContext(ctx, `UPDATE destination_users SET state = ?, updated_at = ? WHERE owner_id = ? AND state = ?`, userDropped, ms(now), id, userPending)
	return err
}

// DestinationUser loads owner id's user; errNotFound when it has none.
func (s *store) DestinationUser(ctx context.Context, id string) (destUser, error) {
	u := destUser{ownerID: id}
	err := s.q.QueryRowContext(ctx, `SELECT kind, group_id, cluster, username, password_enc, state, attempts, sent, last_error FROM destination_users WHERE owner_id = ?`, id).
		Scan(&u.kind, &u.groupID, &u.cluster, &u.name, &u.passwordEnc, &u.state, &u.attempts, &u.sent, &u.lastErr)
	return u, notFoundIf(err)
}

// DueDestinationUsers lists up to limit users due at now to be created or
// dropped, the longest waiting first.
func (s *store) DueDestinationUsers(ctx context.Context, now time.Time, limit int) ([]destUser, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (destUser, error) {
		var u destUser
		err := rows.Scan(&u.ownerID, &u.kind, &u.groupID, &u.cluster, &u.name, &u.passwordEnc, &u.state, &u.attempts, &u.sent, &u.lastErr)
		return u, err
	}, `SELECT owner_id, kind, group_id, cluster, username, password_enc, state, attempts, sent, last_error FROM destination_users
		WHERE state IN (?, ?) AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`, userPending, userDropping, ms(now), limit)
}

// NextDestinationUserAttempt is when the next create or drop is due
// (ok=false: none is pending).
func (s *store) NextDestinationUserAttempt(ctx context.Context) (time.Time, bool, error) {
	return s.minTime(ctx, `SELECT min(next_attempt_at) FROM destination_users WHERE state IN (?, ?)`, userPending, userDropping)
}

// OpenValidationUsers counts the users of validations not retired yet.
func (s *store) OpenValidationUsers(ctx context.Context) (int, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM destination_users WHERE kind = ? AND state IN (?, ?)`, ownerValidation, userPending, userActive).Scan(&n)
	return n, err
}

// EndedValidationUsers lists the validations that are no longer PENDING
// and whose user is not retired yet.
func (s *store) EndedValidationUsers(ctx context.Context) ([]string, error) {
	return queryAll(ctx, s.q, scanString, `SELECT owner_id FROM destination_users d WHERE kind = ? AND state IN (?, ?)
		AND NOT EXISTS (SELECT 1 FROM validations v WHERE v.id = d.owner_id AND v.status = 'PENDING')`, ownerValidation, userPending, userActive)
}

// MarkDestinationUserSent records that a createUser of owner id's user
// may reach the server.
func (s *store) MarkDestinationUserSent(ctx context.Context, id string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE destination_users SET sent = 1 WHERE owner_id = ?`, id)
	return err
}

// RecordDestinationUserAttempt stores the outcome of an attempt at owner
// id's user: its state, attempts so far, when it is due again, whether a
// create may have reached the server, and the attempt's error ("" if none).
func (s *store) RecordDestinationUserAttempt(ctx context.Context, id, state string, attempts int, next time.Time, sent bool, lastErr string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE destination_users SET state = ?, attempts = ?, next_attempt_at = ?, sent = max(sent, ?), last_error = ?, updated_at = ? WHERE owner_id = ?`,
		state, attempts, ms(next), sent, lastErr, ms(now), id)
	return err
}

// ValidationAgent is the agent of validation id; errNotFound when there is none.
func (s *store) ValidationAgent(ctx context.Context, id string) (string, error) {
	var agentID string
	err := s.q.QueryRowContext(ctx, `SELECT agent_id FROM validations WHERE id = ?`, id).Scan(&agentID)
	return agentID, notFoundIf(err)
}

// SetPendingValidationMessage sets the errorMessage of validation id while
// it is PENDING ("" clears it).
func (s *store) SetPendingValidationMessage(ctx context.Context, id, msg string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE validations SET error_message = ?, updated_at = ? WHERE id = ? AND status = 'PENDING'`, msg, ms(now), id)
	return err
}
