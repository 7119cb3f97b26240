package controlplane

import "context"

// The store's migrations and their events. Most of their queries are still
// in migrations.go, agentapi.go, livemigrations.go, linktoken.go and timers.go
// (loadMigration, activeMigrations, addEvent, ...), which take a querier;
// store methods call them with s.q.

// Migration loads migration id; errNotFound when there is none.
func (s *store) Migration(ctx context.Context, id string) (*migration, error) {
	m, err := loadMigration(ctx, s.q, id)
	return m, notFoundIf(err)
}

// sealedValidation is what scrubbing a validation's results needs: its
// sealed request, project and destination cluster.
type sealedValidation struct {
	requestEnc           []byte
	groupID, destination string
}

// ValidationRequest loads validation id's sealed request; errNotFound when
// there is none.
func (s *store) ValidationRequest(ctx context.Context, id string) (sealedValidation, error) {
	var v sealedValidation
	err := s.q.QueryRowContext(ctx, `SELECT request_enc, group_id, destination_cluster FROM validations WHERE id = ?`, id).Scan(&v.requestEnc, &v.groupID, &v.destination)
	return v, notFoundIf(err)
}
