package controlplane

import "context"

// The store's secrets canary, and the file maintenance after secrets are
// rewritten. The sealed columns themselves belong to their tables' files.

// Canary loads the sealed canary; errNotFound in a store that has none.
func (s *store) Canary(ctx context.Context) ([]byte, error) {
	var sealed []byte
	err := s.q.QueryRowContext(ctx, `SELECT sealed FROM secrets_canary WHERE id = 1`).Scan(&sealed)
	return sealed, notFoundIf(err)
}

// SetCanary stores the sealed canary (once: a second call fails).
func (s *store) SetCanary(ctx context.Context, sealed []byte) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO secrets_canary (id, sealed) VALUES (1, ?)`, sealed)
	return err
}

// AnySealedValue loads one sealed value of the store (a cluster's connection
// string or a migration's request); errNotFound when it has none.
func (s *store) AnySealedValue(ctx context.Context) ([]byte, error) {
	var sealed []byte
	err := s.q.QueryRowContext(ctx, `SELECT conn_enc FROM clusters UNION ALL SELECT request_enc FROM migrations LIMIT 1`).Scan(&sealed)
	return sealed, notFoundIf(err)
}

// Checkpoint moves every page of the WAL into the main file and empties the
// WAL, so overwritten values are gone from both files.
func (s *store) Checkpoint(ctx context.Context) error {
	_, err := s.q.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}
