package controlplane

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// BootstrapOptions name the first owner. An empty Password gets a random one.
type BootstrapOptions struct {
	Username string
	Password string
	OrgName  string
}

// Bootstrap creates the first organization, project and owner when the store
// has no principal yet. It returns created=false when there already is one
// (nothing is changed then), and the password it set (generated when
// opts.Password is empty) so the caller can print it once.
func (s *Server) Bootstrap(ctx context.Context, opts BootstrapOptions) (created bool, password, orgID string, err error) {
	if opts.Username == "" {
		opts.Username = "admin"
	}
	if opts.OrgName == "" {
		opts.OrgName = "Default Organization"
	}
	password = opts.Password
	if password == "" {
		password = randomToken(18)
	}
	now := time.Now()
	err = s.store.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM principals`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		orgID = newID(now)
		if err := insertOrg(ctx, tx, orgID, opts.OrgName, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO projects (id, org_id, name, created_at) VALUES (?, ?, ?, ?)`, newID(now), orgID, "Project 0", ms(now)); err != nil {
			return err
		}
		pid := newID(now)
		if _, err := tx.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, is_admin, created_at) VALUES (?, 'user', ?, ?, 1, ?)`,
			pid, opts.Username, hashPassword(password), ms(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO roles (principal_id, org_id, role) VALUES (?, ?, ?)`, pid, orgID, api.RoleOrgOwner)
		created = true
		return err
	})
	if !created {
		password = ""
	}
	return created, password, orgID, err
}

func insertOrg(ctx context.Context, q querier, id, name string, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO orgs (id, name, source_group_id, created_at) VALUES (?, ?, ?, ?)`, id, name, newID(now), ms(now))
	if isUniqueViolation(err) {
		return conflict("DUPLICATE_ORG_NAME", "an organization named %q exists", name)
	}
	return err
}

// GET /api/atlas/v2/orgs
func (s *Server) handleListOrgs(w http.ResponseWriter, r *http.Request, p *principal) error {
	rows, err := s.store.db.QueryContext(r.Context(), `SELECT id, name FROM orgs ORDER BY created_at, id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	page := api.Page[api.Org]{Results: []api.Org{}}
	for rows.Next() {
		var o api.Org
		if err := rows.Scan(&o.ID, &o.Name); err != nil {
			return err
		}
		if _, reader := p.orgRole(o.ID); reader {
			page.Results = append(page.Results, o)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// POST /api/atlas/v2/orgs (server administrators).
func (s *Server) handleCreateOrg(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req api.OrgRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if !p.admin {
		return errForbidden
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	now := time.Now()
	org := api.Org{ID: newID(now), Name: req.Name}
	if err := insertOrg(r.Context(), s.store.db, org.ID, org.Name, now); err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, org)
	return nil
}

// GET /api/atlas/v2/orgs/{orgId}
func (s *Server) handleGetOrg(w http.ResponseWriter, r *http.Request, p *principal) error {
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(r.Context(), p, orgID, false); err != nil {
		return err
	}
	o := api.Org{ID: orgID}
	if err := s.store.db.QueryRowContext(r.Context(), `SELECT name FROM orgs WHERE id = ?`, orgID).Scan(&o.Name); err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, o)
	return nil
}

// GET /api/atlas/v2/groups
func (s *Server) handleListProjects(w http.ResponseWriter, r *http.Request, p *principal) error {
	rows, err := s.store.db.QueryContext(r.Context(), `SELECT id, name, org_id FROM projects ORDER BY created_at, id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	page := api.Page[api.Project]{Results: []api.Project{}}
	for rows.Next() {
		var pr api.Project
		if err := rows.Scan(&pr.ID, &pr.Name, &pr.OrgID); err != nil {
			return err
		}
		if _, reader := p.projectRole(pr.OrgID, pr.ID); reader {
			page.Results = append(page.Results, pr)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// POST /api/atlas/v2/groups (organization owners).
func (s *Server) handleCreateProject(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req api.ProjectRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if req.OrgID == "" || strings.TrimSpace(req.Name) == "" {
		return badRequest("MISSING_ATTRIBUTE", "name and orgId are required")
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	if err := s.requireOrg(r.Context(), p, req.OrgID, true); err != nil {
		return err
	}
	now := time.Now()
	pr := api.Project{ID: newID(now), Name: req.Name, OrgID: req.OrgID}
	_, err := s.store.db.ExecContext(r.Context(), `INSERT INTO projects (id, org_id, name, created_at) VALUES (?, ?, ?, ?)`, pr.ID, pr.OrgID, pr.Name, ms(now))
	if isUniqueViolation(err) {
		return conflict("DUPLICATE_GROUP_NAME", "a project named %q exists in this organization", req.Name)
	}
	if err != nil {
		return err
	}
	if a := auditFrom(r.Context()); a != nil {
		a.orgID, a.groupID = pr.OrgID, pr.ID
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, pr)
	return nil
}

// GET /api/atlas/v2/groups/{groupId}
func (s *Server) handleGetProject(w http.ResponseWriter, r *http.Request, p *principal) error {
	pr, err := s.requireProject(r.Context(), p, r.PathValue("groupId"), false)
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, pr)
	return nil
}

// checkRoles refuses roles outside org orgID or with unknown names.
func (s *Server) checkRoles(ctx context.Context, orgID string, roles []api.Role) error {
	if len(roles) == 0 {
		return badRequest("MISSING_ATTRIBUTE", "roles: at least one role is required")
	}
	for i := range roles {
		r := &roles[i]
		if r.OrgID == "" && r.GroupID == "" {
			r.OrgID = orgID
		}
		switch r.RoleName {
		case api.RoleOrgOwner, api.RoleOrgMember:
			if r.GroupID != "" || r.OrgID != orgID {
				return badRequest("INVALID_ROLE", "role %s applies to this organization (orgId %s) only", r.RoleName, orgID)
			}
		case api.RoleGroupOwner, api.RoleGroupReadOnly:
			var owner string
			err := s.store.db.QueryRowContext(ctx, `SELECT org_id FROM projects WHERE id = ?`, r.GroupID).Scan(&owner)
			if isNoRows(err) || (err == nil && owner != orgID) {
				return badRequest("INVALID_ROLE", "role %s: project %q is not in this organization", r.RoleName, r.GroupID)
			}
			if err != nil {
				return err
			}
			r.OrgID = orgID
		default:
			return badRequest("INVALID_ROLE", "role %q: want ORG_OWNER, ORG_MEMBER, GROUP_OWNER or GROUP_READ_ONLY", r.RoleName)
		}
	}
	return nil
}

func insertRoles(ctx context.Context, tx *sql.Tx, principalID string, roles []api.Role) error {
	for _, r := range roles {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO roles (principal_id, org_id, group_id, role) VALUES (?, ?, ?, ?)`, principalID, r.OrgID, r.GroupID, r.RoleName); err != nil {
			return err
		}
	}
	return nil
}

// POST /api/atlas/v2/orgs/{orgId}/users (organization owners).
func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	var req api.UserRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	if strings.TrimSpace(req.Username) == "" || len(req.Password) < 8 {
		return badRequest("MISSING_ATTRIBUTE", "username and a password of at least 8 characters are required")
	}
	if err := checkName("username", req.Username); err != nil {
		return err
	}
	if err := s.checkRoles(ctx, orgID, req.Roles); err != nil {
		return err
	}
	// Usernames are unique over the whole server, so a taken name must be
	// refused; the answer is the same whether it is taken in this org or
	// in another, and taken-name answers are throttled per caller like
	// failed logins, so probing for other orgs' users is slow.
	keys := []throttleKey{{"usernames\x00" + p.id, s.opts.AuthLimits.withDefaults().PerAddress}}
	if ok, retry := s.throttle.admit(keys); !ok {
		return errThrottled(retry)
	}
	now := time.Now()
	u := api.User{ID: newID(now), Username: req.Username}
	hash := hashPassword(req.Password)
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, created_at) VALUES (?, 'user', ?, ?, ?)`, u.ID, u.Username, hash, ms(now))
		if isUniqueViolation(err) {
			return conflict("USER_ALREADY_EXISTS", "username %q is not available: choose another", req.Username).withParams(req.Username)
		}
		if err != nil {
			return err
		}
		if err := insertRoles(ctx, tx, u.ID, req.Roles); err != nil {
			return err
		}
		u.Roles, err = s.rolesOf(ctx, tx, u.ID)
		return err
	})
	if err != nil {
		return err
	}
	s.throttle.succeeded(keys)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// POST /api/atlas/v2/orgs/{orgId}/apiKeys (organization owners). The private
// key is in this response only.
func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	var req api.APIKeyRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	if err := s.checkRoles(ctx, orgID, req.Roles); err != nil {
		return err
	}
	if err := checkText("desc", req.Desc, maxTextLength); err != nil {
		return err
	}
	now := time.Now()
	k := api.APIKey{ID: newID(now), Desc: req.Desc, PublicKey: strings.ToLower(randomToken(6)), PrivateKey: randomToken(24)}
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, digest_ha1_enc, description, created_at) VALUES (?, 'apikey', ?, ?, ?, ?, ?)`,
			k.ID, k.PublicKey, tokenHash(k.PrivateKey), s.sealer.seal([]byte(digestHA1(k.PublicKey, k.PrivateKey))), k.Desc, ms(now)); err != nil {
			return err
		}
		if err := insertRoles(ctx, tx, k.ID, req.Roles); err != nil {
			return err
		}
		var err error
		k.Roles, err = s.rolesOf(ctx, tx, k.ID)
		return err
	})
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, k)
	return nil
}
