package controlplane

import (
	"context"
	"errors"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's identity tables: principals (users, API keys, service
// accounts), their roles, organizations, projects and browser sessions.

// credential is what authenticating a principal by name needs.
type credential struct {
	id, kind string
	// secretHash is a user's password hash or an API key's token hash.
	secretHash string
	// digestHA1 is an API key's sealed Digest HA1 (nil for older keys).
	digestHA1      []byte
	serviceAccount bool
}

// Credential loads the credential of the principal named name.
func (s *store) Credential(ctx context.Context, name string) (credential, error) {
	var c credential
	err := s.q.QueryRowContext(ctx, `SELECT id, kind, secret_hash, digest_ha1_enc, service_account FROM principals WHERE name = ?`, name).
		Scan(&c.id, &c.kind, &c.secretHash, &c.digestHA1, &c.serviceAccount)
	return c, notFoundIf(err)
}

// Principal loads principal id with its roles.
func (s *store) Principal(ctx context.Context, id string) (*principal, error) {
	p := &principal{id: id}
	err := s.q.QueryRowContext(ctx, `SELECT kind, name, is_admin FROM principals WHERE id = ?`, id).Scan(&p.kind, &p.name, &p.admin)
	if err != nil {
		return nil, notFoundIf(err)
	}
	p.roles, err = s.Roles(ctx, id)
	return p, err
}

// Roles lists principalID's roles, ordered by org, project and role.
func (s *store) Roles(ctx context.Context, principalID string) ([]api.Role, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT org_id, group_id, role FROM roles WHERE principal_id = ? ORDER BY org_id, group_id, role`, principalID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	roles := []api.Role{}
	for rows.Next() {
		var r api.Role
		if err := rows.Scan(&r.OrgID, &r.GroupID, &r.RoleName); err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return roles, rows.Err()
}

// addRoles grants roles to principalID (a role it has is kept once).
func (s *store) addRoles(ctx context.Context, principalID string, roles []api.Role) error {
	for _, r := range roles {
		if _, err := s.q.ExecContext(ctx, `INSERT OR IGNORE INTO roles (principal_id, org_id, group_id, role) VALUES (?, ?, ?, ?)`, principalID, r.OrgID, r.GroupID, r.RoleName); err != nil {
			return err
		}
	}
	return nil
}

// firstOwner is the first organization, project and owner of a store.
type firstOwner struct {
	orgID, orgName, projectID string
	principalID, username     string
	passwordHash              string
}

// CreateFirstOwner creates o's organization, project and owner (a server
// administrator) when the store has no principal yet, and reports whether it
// did (nothing is changed when there is one).
func (s *store) CreateFirstOwner(ctx context.Context, o firstOwner, now time.Time) (created bool, err error) {
	err = s.Tx(ctx, func(st *store) error {
		var n int
		if err := st.q.QueryRowContext(ctx, `SELECT count(*) FROM principals`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if err := st.CreateOrg(ctx, api.Org{ID: o.orgID, Name: o.orgName}, now); err != nil {
			return err
		}
		if err := st.CreateProject(ctx, api.Project{ID: o.projectID, OrgID: o.orgID, Name: "Project 0"}, now); err != nil {
			return err
		}
		if _, err := st.q.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, is_admin, created_at) VALUES (?, 'user', ?, ?, 1, ?)`,
			o.principalID, o.username, o.passwordHash, ms(now)); err != nil {
			return err
		}
		if err := st.addRoles(ctx, o.principalID, []api.Role{{OrgID: o.orgID, RoleName: api.RoleOrgOwner}}); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

// CreateOrg inserts org; errExists when its name is taken.
func (s *store) CreateOrg(ctx context.Context, org api.Org, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO orgs (id, name, source_group_id, created_at) VALUES (?, ?, ?, ?)`, org.ID, org.Name, newID(now), ms(now))
	return existsIf(err)
}

// Orgs lists every organization, oldest first.
func (s *store) Orgs(ctx context.Context) ([]api.Org, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, name FROM orgs ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.Org
	for rows.Next() {
		var o api.Org
		if err := rows.Scan(&o.ID, &o.Name); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Org loads organization id.
func (s *store) Org(ctx context.Context, id string) (api.Org, error) {
	o := api.Org{ID: id}
	err := s.q.QueryRowContext(ctx, `SELECT name FROM orgs WHERE id = ?`, id).Scan(&o.Name)
	return o, notFoundIf(err)
}

// OrgSourceGroup is organization id's source project (the group id source
// clusters are named in); errNotFound when there is no such organization.
func (s *store) OrgSourceGroup(ctx context.Context, id string) (string, error) {
	var g string
	err := s.q.QueryRowContext(ctx, `SELECT source_group_id FROM orgs WHERE id = ?`, id).Scan(&g)
	return g, notFoundIf(err)
}

// CreateProject inserts pr; errExists when its name is taken in its org.
func (s *store) CreateProject(ctx context.Context, pr api.Project, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO projects (id, org_id, name, created_at) VALUES (?, ?, ?, ?)`, pr.ID, pr.OrgID, pr.Name, ms(now))
	return existsIf(err)
}

// Projects lists every project, oldest first.
func (s *store) Projects(ctx context.Context) ([]api.Project, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (api.Project, error) {
		var pr api.Project
		err := rows.Scan(&pr.ID, &pr.Name, &pr.OrgID)
		return pr, err
	}, `SELECT id, name, org_id FROM projects ORDER BY created_at, id`)
}

// Project loads project id.
func (s *store) Project(ctx context.Context, id string) (api.Project, error) {
	var pr api.Project
	err := s.q.QueryRowContext(ctx, `SELECT id, name, org_id FROM projects WHERE id = ?`, id).Scan(&pr.ID, &pr.Name, &pr.OrgID)
	return pr, notFoundIf(err)
}

// newPrincipal is a user or API key to create.
type newPrincipal struct {
	id, name, secretHash string
	// digestHA1 and desc are an API key's.
	digestHA1 []byte
	desc      string
	roles     []api.Role
}

// CreateUser inserts user u with its roles and returns the roles it has;
// errExists when the name is taken.
func (s *store) CreateUser(ctx context.Context, u newPrincipal, now time.Time) (roles []api.Role, err error) {
	err = s.Tx(ctx, func(st *store) error {
		_, err := st.q.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, created_at) VALUES (?, 'user', ?, ?, ?)`, u.id, u.name, u.secretHash, ms(now))
		if err != nil {
			return existsIf(err)
		}
		if err := st.addRoles(ctx, u.id, u.roles); err != nil {
			return err
		}
		roles, err = st.Roles(ctx, u.id)
		return err
	})
	return roles, err
}

// CreateAPIKey inserts API key k with its roles and returns the roles it has.
func (s *store) CreateAPIKey(ctx context.Context, k newPrincipal, now time.Time) (roles []api.Role, err error) {
	err = s.Tx(ctx, func(st *store) error {
		if _, err := st.q.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, digest_ha1_enc, description, created_at) VALUES (?, 'apikey', ?, ?, ?, ?, ?)`,
			k.id, k.name, k.secretHash, k.digestHA1, k.desc, ms(now)); err != nil {
			return existsIf(err)
		}
		if err := st.addRoles(ctx, k.id, k.roles); err != nil {
			return err
		}
		var err error
		roles, err = st.Roles(ctx, k.id)
		return err
	})
	return roles, err
}

// principalRow is a listed principal.
type principalRow struct{ id, name, desc string }

// PrincipalsIn lists the principals of kind (service accounts excluded)
// with a role in org orgID, oldest first.
func (s *store) PrincipalsIn(ctx context.Context, orgID, kind string) ([]principalRow, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (principalRow, error) {
		var x principalRow
		err := rows.Scan(&x.id, &x.name, &x.desc)
		return x, err
	}, `SELECT p.id, p.name, p.description FROM principals p
		WHERE p.kind = ? AND p.service_account = 0 AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?)
		ORDER BY p.created_at, p.id`, kind, orgID)
}

// DeleteAPIKey deletes API key keyID of org orgID (not a service account);
// errNotFound when there is none.
func (s *store) DeleteAPIKey(ctx context.Context, orgID, keyID string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM principals WHERE id = ? AND kind = 'apikey' AND service_account = 0
		AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = principals.id AND r.org_id = ?)`, keyID, orgID)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}

// errLastOwner: the user to remove is the organization's last owner.
var errLastOwner = errors.New("the organization's last owner")

// RemoveUserFromOrg takes every role in org orgID from user userID and
// deletes the user when no role is left (server administrators are kept).
// errNotFound when the user has no role there, errLastOwner when no other
// principal owns the org.
func (s *store) RemoveUserFromOrg(ctx context.Context, orgID, userID string) error {
	return s.Tx(ctx, func(st *store) error {
		var n int
		if err := st.q.QueryRowContext(ctx, `SELECT count(*) FROM principals p WHERE p.id = ? AND p.kind = 'user'
			AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?)`, userID, orgID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errNotFound
		}
		var others int
		if err := st.q.QueryRowContext(ctx, `SELECT count(DISTINCT principal_id) FROM roles WHERE org_id = ? AND group_id = '' AND role = ? AND principal_id != ?`,
			orgID, api.RoleOrgOwner, userID).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			return errLastOwner
		}
		if _, err := st.q.ExecContext(ctx, `DELETE FROM roles WHERE principal_id = ? AND org_id = ?`, userID, orgID); err != nil {
			return err
		}
		_, err := st.q.ExecContext(ctx, `DELETE FROM principals WHERE id = ? AND is_admin = 0 AND NOT EXISTS (SELECT 1 FROM roles WHERE principal_id = ?)`, userID, userID)
		return err
	})
}

// DeletePrincipal deletes principal id; its roles, secrets, tokens and
// sessions go with it.
func (s *store) DeletePrincipal(ctx context.Context, id string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM principals WHERE id = ?`, id)
	return err
}

// session is a browser session.
type session struct {
	principalID, csrfToken string
	expiresAt              time.Time
}

// CreateSession stores a session under the hash of its token.
func (s *store) CreateSession(ctx context.Context, tokenHash string, sess session) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO sessions (token_hash, principal_id, csrf_token, expires_at) VALUES (?, ?, ?, ?)`,
		tokenHash, sess.principalID, sess.csrfToken, ms(sess.expiresAt))
	return err
}

// Session loads the session of a token's hash (expired ones too).
func (s *store) Session(ctx context.Context, tokenHash string) (session, error) {
	var sess session
	var expires int64
	err := s.q.QueryRowContext(ctx, `SELECT principal_id, csrf_token, expires_at FROM sessions WHERE token_hash = ?`, tokenHash).
		Scan(&sess.principalID, &sess.csrfToken, &expires)
	sess.expiresAt = fromMS(expires)
	return sess, notFoundIf(err)
}

// DeleteSession deletes the session of a token's hash, if any.
func (s *store) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
	return err
}
