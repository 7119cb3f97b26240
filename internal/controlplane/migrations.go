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
func (s *Server) addEvent(ctx context.Context, st *store, m *migration, typ api.EventType, msg string, now time.Time) error {
	eventID, err := st.AddEvent(ctx, m, typ, msg, now)
	if err != nil {
		return err
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "migration event", slog.String("migration_id", m.id), slog.String("event", string(typ)), slog.String("message", msg))
	s.metrics.events.WithLabelValues(string(typ)).Inc()
	if err := s.emailOnEvent(ctx, st, m, typ, msg, now); err != nil {
		return err
	}
	if !webhookEvents[typ] {
		return nil
	}
	return st.QueueWebhookDelivery(ctx, m.groupID, eventID, now)
}

// finish moves m to a terminal status with an event; msg becomes the
// event's message and, unless COMPLETE, the migration's error message. The
// migration's destination user is marked for dropping.
func (s *Server) finish(ctx context.Context, st *store, m *migration, status api.MigrationStatus, msg string, typ api.EventType, now time.Time) error {
	errMsg := msg
	if status == api.MigrationComplete {
		errMsg = ""
	}
	err := st.FinishMigration(ctx, m.id, status, errMsg, now)
	if err != nil {
		return err
	}
	m.status, m.errorMessage = status, errMsg
	s.metrics.migrationsFinished.WithLabelValues(string(status)).Inc()
	if err := s.addEvent(ctx, st, m, typ, msg, now); err != nil {
		return err
	}
	return s.retireDestinationUser(ctx, st, m, now)
}

func (s *Server) listEvents(ctx context.Context, migrationID string) ([]api.Event, error) {
	return s.store.Events(ctx, migrationID)
}
