package controlplane

import "context"

// Counts the metrics read from the store at scrape time.

// MigrationCounts counts the migrations by status (statuses with none are absent).
func (s *store) MigrationCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT status, count(*) FROM migrations GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// AgentCounts counts the registered agents (not revoked) that are live and lost.
func (s *store) AgentCounts(ctx context.Context) (live, lost int, err error) {
	err = s.q.QueryRowContext(ctx, `SELECT coalesce(sum(lost = 0), 0), coalesce(sum(lost = 1), 0) FROM agents WHERE revoked = 0`).Scan(&live, &lost)
	return live, lost, err
}
