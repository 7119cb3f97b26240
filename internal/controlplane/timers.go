package controlplane

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// MissedHeartbeatsLost is how many heartbeat intervals may pass without any
// call from an agent (heartbeat, work poll, progress) before the control
// plane declares it lost: Timing.AgentLostAfter defaults to
// MissedHeartbeatsLost × Timing.HeartbeatInterval (3 × 10 s = 30 s). Agents
// send a heartbeat every half interval, so a lost host has missed six.
const MissedHeartbeatsLost = 3

// runTimers fires the control plane's deadlines: cutover-window expiry and
// its warning, and agent heartbeat loss. All deadlines live in the store, so
// a restarted server picks them up where it left off; it sleeps until the
// earliest one or until kickTimers.
func (s *Server) runTimers(ctx context.Context) {
	for {
		next, err := s.fireTimers(ctx, time.Now())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn("timers", "err", err)
			next = time.Now().Add(5 * time.Second)
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.timerWake:
			t.Stop()
		}
	}
}

// fireTimers handles every deadline at or before now and returns the next one.
func (s *Server) fireTimers(ctx context.Context, now time.Time) (time.Time, error) {
	var notify []string
	startedAt := ms(s.startedAt)
	lostAfter := s.timing.AgentLostAfter.Milliseconds()
	warnBefore := s.timing.ExpiryWarning.Milliseconds()
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		// Lapsed cutover windows → EXPIRED; the agent stops syncing.
		expired, err := activeMigrations(ctx, tx, `status = 'WORKING' AND cutover_requested_at IS NULL AND expires_at <= ?`, ms(now))
		if err != nil {
			return err
		}
		for _, m := range expired {
			if err := s.finish(ctx, tx, m, api.MigrationExpired, "the cutover window lapsed at "+fromMS(m.expiresAt.Int64).Format(time.RFC3339), api.EventExpired, now); err != nil {
				return err
			}
			if err := enqueue(ctx, tx, m.agentID, api.WorkExpire, "", m.id, now); err != nil {
				return err
			}
			notify = append(notify, m.agentID)
		}
		// Warnings before expiry.
		warn, err := activeMigrations(ctx, tx, `status = 'WORKING' AND cutover_requested_at IS NULL AND expiry_warned = 0 AND expires_at - ? <= ?`, warnBefore, ms(now))
		if err != nil {
			return err
		}
		for _, m := range warn {
			if _, err := tx.ExecContext(ctx, `UPDATE migrations SET expiry_warned = 1 WHERE id = ?`, m.id); err != nil {
				return err
			}
			msg := "the cutover window closes at " + fromMS(m.expiresAt.Int64).Format(time.RFC3339) + ": cut over or extend it"
			if err := s.addEvent(ctx, tx, m, api.EventExpiryWarning, msg, now); err != nil {
				return err
			}
		}
		if err := s.emailTimers(ctx, tx, now); err != nil {
			return err
		}
		// Agents that missed their heartbeats are lost; their migrations stall:
		// not ready for cutover and no lag until a fresh progress report after
		// the host is back (the last one is not live any more).
		// A restarted server counts from its own start, not the last heartbeat.
		rows, err := tx.QueryContext(ctx, `SELECT id, hostname, last_seen_at FROM agents WHERE revoked = 0 AND lost = 0 AND max(last_seen_at, ?) + ? <= ?`, startedAt, lostAfter, ms(now))
		if err != nil {
			return err
		}
		type lostAgent struct {
			id, host string
			seenAt   int64
		}
		var lost []lostAgent
		for rows.Next() {
			var a lostAgent
			if err := rows.Scan(&a.id, &a.host, &a.seenAt); err != nil {
				rows.Close()
				return err
			}
			lost = append(lost, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, a := range lost {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "agent lost", slog.String("agent_id", a.id), slog.String("hostname", a.host), slog.Time("last_seen_at", fromMS(a.seenAt)))
			if _, err := tx.ExecContext(ctx, `UPDATE agents SET lost = 1 WHERE id = ?`, a.id); err != nil {
				return err
			}
			stalled, err := activeMigrations(ctx, tx, `agent_id = ? AND stalled = 0`, a.id)
			if err != nil {
				return err
			}
			for _, m := range stalled {
				if _, err := tx.ExecContext(ctx, `UPDATE migrations SET stalled = 1, ready = 0, lag_seconds = NULL, updated_at = ? WHERE id = ?`, ms(now), m.id); err != nil {
					return err
				}
				m.hostLost, m.hostSeenAt = true, a.seenAt
				if err := s.addEvent(ctx, tx, m, api.EventStalled, m.hostLostDetail(), now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	for _, id := range notify {
		s.work.notify(id)
	}
	s.kickWebhooks()

	next := now.Add(time.Hour)
	var v sql.NullInt64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT min(expires_at) FROM migrations WHERE status = 'WORKING' AND cutover_requested_at IS NULL`, nil},
		{`SELECT min(expires_at - ?) FROM migrations WHERE status = 'WORKING' AND cutover_requested_at IS NULL AND expiry_warned = 0`, []any{warnBefore}},
		{`SELECT min(max(last_seen_at, ?) + ?) FROM agents WHERE revoked = 0 AND lost = 0`, []any{startedAt, lostAfter}},
	} {
		if err := s.store.db.QueryRowContext(ctx, q.sql, q.args...).Scan(&v); err != nil {
			return time.Time{}, err
		}
		if v.Valid && fromMS(v.Int64).Before(next) {
			next = fromMS(v.Int64)
		}
	}
	if next, err = s.emailNextDeadline(ctx, now, next); err != nil {
		return time.Time{}, err
	}
	if next.Before(now) {
		next = now
	}
	return next, nil
}
