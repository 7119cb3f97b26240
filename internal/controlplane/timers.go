package controlplane

import (
	"context"
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
	err := s.store.Tx(ctx, func(st *store) error {
		// Lapsed cutover windows → EXPIRED; the agent stops syncing.
		expired, err := st.LapsedWindows(ctx, now)
		if err != nil {
			return err
		}
		for _, m := range expired {
			if err := s.finish(ctx, st, m, api.MigrationExpired, "the cutover window lapsed at "+fromMS(m.expiresAt.Int64).Format(time.RFC3339), api.EventExpired, now); err != nil {
				return err
			}
			if err := st.Enqueue(ctx, m.agentID, api.WorkExpire, "", m.id, now); err != nil {
				return err
			}
			notify = append(notify, m.agentID)
		}
		// Warnings before expiry.
		warn, err := st.WindowWarningsDue(ctx, s.timing.ExpiryWarning, now)
		if err != nil {
			return err
		}
		for _, m := range warn {
			if err := st.SetExpiryWarned(ctx, m.id); err != nil {
				return err
			}
			msg := "the cutover window closes at " + fromMS(m.expiresAt.Int64).Format(time.RFC3339) + ": cut over or extend it"
			if err := s.addEvent(ctx, st, m, api.EventExpiryWarning, msg, now); err != nil {
				return err
			}
		}
		if err := s.emailTimers(ctx, st, now); err != nil {
			return err
		}
		// Agents that missed their heartbeats are lost; their migrations stall:
		// not ready for cutover and no lag until a fresh progress report after
		// the host is back (the last one is not live any more).
		// A restarted server counts from its own start, not the last heartbeat.
		lost, err := st.AgentsToLose(ctx, s.startedAt, s.timing.AgentLostAfter, now)
		if err != nil {
			return err
		}
		for _, a := range lost {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "agent lost", slog.String("agent_id", a.id), slog.String("hostname", a.host), slog.Time("last_seen_at", fromMS(a.seenAt)))
			if err := st.MarkAgentLost(ctx, a.id); err != nil {
				return err
			}
			stalled, err := st.MigrationsToStall(ctx, a.id)
			if err != nil {
				return err
			}
			for _, m := range stalled {
				if err := st.StallMigration(ctx, m.id, now); err != nil {
					return err
				}
				m.hostLost, m.hostSeenAt = true, a.seenAt
				if err := s.addEvent(ctx, st, m, api.EventStalled, m.hostLostDetail(), now); err != nil {
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
	for _, deadline := range []func() (time.Time, bool, error){
		func() (time.Time, bool, error) { return s.store.NextWindowExpiry(ctx) },
		func() (time.Time, bool, error) { return s.store.NextWindowWarning(ctx, s.timing.ExpiryWarning) },
		func() (time.Time, bool, error) {
			return s.store.NextAgentLoss(ctx, s.startedAt, s.timing.AgentLostAfter)
		},
	} {
		t, ok, err := deadline()
		if err != nil {
			return time.Time{}, err
		}
		if ok && t.Before(next) {
			next = t
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
