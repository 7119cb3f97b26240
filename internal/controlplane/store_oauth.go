package controlplane

import (
	"context"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's service accounts (principals with service_account = 1),
// their secrets and the OAuth access tokens traded for them.

// newServiceAccount is a service account to create with its first secret.
type newServiceAccount struct {
	principalID string
	sa          api.ServiceAccount // ClientID, Name, Description
	roles       []api.Role
	secretID    string
	secretHash  string
	expiresAt   time.Time
}

// CreateServiceAccount inserts a's principal, roles and secret.
func (s *store) CreateServiceAccount(ctx context.Context, a newServiceAccount, now time.Time) error {
	return s.Tx(ctx, func(st *store) error {
		if _, err := st.q.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, description, display_name, service_account, created_at) VALUES (?, 'apikey', ?, '', ?, ?, 1, ?)`,
			a.principalID, a.sa.ClientID, a.sa.Description, a.sa.Name, ms(now)); err != nil {
			return existsIf(err)
		}
		if err := st.addRoles(ctx, a.principalID, a.roles); err != nil {
			return err
		}
		_, err := st.q.ExecContext(ctx, `INSERT INTO service_account_secrets (id, principal_id, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			a.secretID, a.principalID, a.secretHash, ms(now), ms(a.expiresAt))
		return err
	})
}

// ServiceAccountIn returns the principal ID of service account clientID in
// org orgID; errNotFound when there is none.
func (s *store) ServiceAccountIn(ctx context.Context, orgID, clientID string) (string, error) {
	var pid string
	err := s.q.QueryRowContext(ctx, `SELECT p.id FROM principals p WHERE p.name = ? AND p.service_account = 1
		AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?)`, clientID, orgID).Scan(&pid)
	return pid, notFoundIf(err)
}

// ServiceAccountsIn lists the service accounts with a role in org orgID,
// oldest first, with their role names and secrets (IDs and times only).
func (s *store) ServiceAccountsIn(ctx context.Context, orgID string) ([]api.ServiceAccount, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT p.id, p.name, p.display_name, p.description, p.created_at FROM principals p
		WHERE p.service_account = 1 AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?) ORDER BY p.created_at, p.id`, orgID)
	if err != nil {
		return nil, err
	}
	var ids []string
	var list []api.ServiceAccount
	for rows.Next() {
		var id string
		var sa api.ServiceAccount
		var created int64
		if err := rows.Scan(&id, &sa.ClientID, &sa.Name, &sa.Description, &created); err != nil {
			rows.Close()
			return nil, err
		}
		sa.CreatedAt = fromMS(created)
		ids, list = append(ids, id), append(list, sa)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		roles, err := s.Roles(ctx, id)
		if err != nil {
			return nil, err
		}
		list[i].Roles = []string{}
		for _, r := range roles {
			list[i].Roles = append(list[i].Roles, string(r.RoleName))
		}
		if list[i].Secrets, err = s.serviceAccountSecrets(ctx, id); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (s *store) serviceAccountSecrets(ctx context.Context, principalID string) ([]api.ServiceAccountSecret, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, created_at, expires_at FROM service_account_secrets WHERE principal_id = ? ORDER BY created_at`, principalID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []api.ServiceAccountSecret{}
	for rows.Next() {
		var sec api.ServiceAccountSecret
		var c, e int64
		if err := rows.Scan(&sec.ID, &c, &e); err != nil {
			return nil, err
		}
		sec.CreatedAt, sec.ExpiresAt = fromMS(c), fromMS(e)
		out = append(out, sec)
	}
	return out, rows.Err()
}

// clientSecret is a live secret of a service account.
type clientSecret struct {
	principalID, secretID, secretHash string
}

// LiveClientSecrets lists the secrets of service account clientID that have
// not expired at now.
func (s *store) LiveClientSecrets(ctx context.Context, clientID string, now time.Time) ([]clientSecret, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT p.id, s.id, s.secret_hash FROM principals p JOIN service_account_secrets s ON s.principal_id = p.id
		WHERE p.name = ? AND p.service_account = 1 AND s.expires_at > ?`, clientID, ms(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []clientSecret
	for rows.Next() {
		var c clientSecret
		if err := rows.Scan(&c.principalID, &c.secretID, &c.secretHash); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// IssueOAuthToken deletes the tokens expired at now and stores a new one
// (by its hash) for principalID's secret secretID.
func (s *store) IssueOAuthToken(ctx context.Context, tokenHash, principalID, secretID string, expiresAt, now time.Time) error {
	if _, err := s.q.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE expires_at < ?`, ms(now)); err != nil {
		return err
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO oauth_tokens (token_hash, principal_id, secret_id, expires_at) VALUES (?, ?, ?, ?)`,
		tokenHash, principalID, secretID, ms(expiresAt))
	return err
}

// RevokeOAuthToken deletes principalID's token of that hash, if any.
func (s *store) RevokeOAuthToken(ctx context.Context, tokenHash, principalID string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE token_hash = ? AND principal_id = ?`, tokenHash, principalID)
	return err
}

// OAuthToken loads the principal and expiry of the token of that hash.
func (s *store) OAuthToken(ctx context.Context, tokenHash string) (principalID string, expiresAt time.Time, err error) {
	var expires int64
	err = s.q.QueryRowContext(ctx, `SELECT principal_id, expires_at FROM oauth_tokens WHERE token_hash = ?`, tokenHash).Scan(&principalID, &expires)
	return principalID, fromMS(expires), notFoundIf(err)
}
