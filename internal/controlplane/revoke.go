package controlplane

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// GET /api/atlas/v2/orgs/{orgId}/apiKeys (organization owners). Private
// keys are never returned after creation.
func (s *Server) handleListAPIKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	list, err := s.principalsIn(ctx, orgID, "apikey")
	if err != nil {
		return err
	}
	page := api.Page[api.APIKey]{Results: []api.APIKey{}}
	for _, x := range list {
		roles, err := s.orgRolesOf(ctx, x.id, orgID)
		if err != nil {
			return err
		}
		page.Results = append(page.Results, api.APIKey{ID: x.id, Desc: x.desc, PublicKey: x.name, Roles: roles})
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// GET /api/atlas/v2/orgs/{orgId}/users (anyone with a role in the org).
func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, false); err != nil {
		return err
	}
	list, err := s.principalsIn(ctx, orgID, "user")
	if err != nil {
		return err
	}
	page := api.Page[api.User]{Results: []api.User{}}
	for _, x := range list {
		roles, err := s.orgRolesOf(ctx, x.id, orgID)
		if err != nil {
			return err
		}
		page.Results = append(page.Results, api.User{ID: x.id, Username: x.name, Roles: roles})
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

type principalRow struct{ id, name, desc string }

// principalsIn lists the principals of kind (service accounts excluded)
// with a role in org orgID.
func (s *Server) principalsIn(ctx context.Context, orgID, kind string) ([]principalRow, error) {
	rows, err := s.store.db.QueryContext(ctx, `SELECT p.id, p.name, p.description FROM principals p
		WHERE p.kind = ? AND p.service_account = 0 AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?)
		ORDER BY p.created_at, p.id`, kind, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []principalRow
	for rows.Next() {
		var x principalRow
		if err := rows.Scan(&x.id, &x.name, &x.desc); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// orgRolesOf is principalID's roles in org orgID only (roles elsewhere are
// not this org's business).
func (s *Server) orgRolesOf(ctx context.Context, principalID, orgID string) ([]api.Role, error) {
	all, err := s.rolesOf(ctx, s.store.db, principalID)
	if err != nil {
		return nil, err
	}
	roles := []api.Role{}
	for _, r := range all {
		if r.OrgID == orgID {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

// DELETE /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId} (organization
// owners): the key is refused from its next request.
func (s *Server) handleDeleteAPIKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID, keyID := r.PathValue("orgId"), r.PathValue("apiUserId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	res, err := s.store.db.ExecContext(ctx, `DELETE FROM principals WHERE id = ? AND kind = 'apikey' AND service_account = 0
		AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = principals.id AND r.org_id = ?)`, keyID, orgID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errorf(http.StatusNotFound, "API_KEY_NOT_FOUND", "No API key with ID %s exists in organization %s.", keyID, orgID).withParams(keyID, orgID)
	}
	s.forgetCredentials(keyID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DELETE /api/atlas/v2/orgs/{orgId}/users/{userId} (organization owners):
// the user loses every role in the org at once; a user left with no role
// (and not a server administrator) is deleted, and their sessions with them.
// An owner cannot remove themselves nor the org's last owner.
func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID, userID := r.PathValue("orgId"), r.PathValue("userId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	if userID == p.id {
		return badRequest("CANNOT_REMOVE_SELF", "you cannot remove yourself from the organization: ask another owner")
	}
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM principals p WHERE p.id = ? AND p.kind = 'user'
			AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?)`, userID, orgID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errorf(http.StatusNotFound, "USER_NOT_FOUND", "No user with ID %s exists in organization %s.", userID, orgID).withParams(userID, orgID)
		}
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT principal_id) FROM roles WHERE org_id = ? AND group_id = '' AND role = ? AND principal_id != ?`,
			orgID, api.RoleOrgOwner, userID).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			return conflict("CANNOT_REMOVE_LAST_OWNER", "user %s is the last owner of organization %s: make another user owner first", userID, orgID)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE principal_id = ? AND org_id = ?`, userID, orgID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM principals WHERE id = ? AND is_admin = 0 AND NOT EXISTS (SELECT 1 FROM roles WHERE principal_id = ?)`, userID, userID)
		return err
	})
	if err != nil {
		return err
	}
	s.forgetCredentials(userID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// auditInfo is what a handler may tell the audit record beyond the path
// (the org of POST /groups, for one).
type auditInfo struct {
	orgID, groupID string
}

type auditKey struct{}

func auditFrom(ctx context.Context) *auditInfo {
	a, _ := ctx.Value(auditKey{}).(*auditInfo)
	return a
}

// audit records a state-changing request of p that was answered status.
// The org is the path's, else the project's, else the handler's (auditInfo).
// A failure to record is logged, not answered: the request already happened.
func (s *Server) audit(r *http.Request, p *principal, a *auditInfo, status int) {
	ctx := context.WithoutCancel(r.Context())
	orgID, groupID := r.PathValue("orgId"), r.PathValue("groupId")
	if a != nil {
		if orgID == "" {
			orgID = a.orgID
		}
		if groupID == "" {
			groupID = a.groupID
		}
	}
	if orgID == "" && groupID != "" {
		_ = s.store.db.QueryRowContext(ctx, `SELECT org_id FROM projects WHERE id = ?`, groupID).Scan(&orgID)
	}
	action := r.Pattern
	if action == "" {
		action = r.Method + " " + r.URL.Path
	}
	if orgID != "" {
		s.recordAudit(ctx, r, p, orgID, groupID, action, status)
		return
	}
	// No org in sight (login, logout, POST /orgs): every org of p's sees it.
	seen := map[string]bool{}
	for _, role := range p.roles {
		if !seen[role.OrgID] {
			seen[role.OrgID] = true
			s.recordAudit(ctx, r, p, role.OrgID, "", action, status)
		}
	}
	if len(seen) == 0 {
		s.recordAudit(ctx, r, p, "", "", action, status)
	}
}

func (s *Server) recordAudit(ctx context.Context, r *http.Request, p *principal, orgID, groupID, action string, status int) {
	addr := r.RemoteAddr
	if a, ok := s.remoteAddr(r); ok {
		addr = a.String()
	}
	if _, err := s.store.db.ExecContext(ctx, `INSERT INTO audit_events (org_id, group_id, principal_id, principal_kind, principal_name, remote_addr, action, target, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, orgID, groupID, p.id, p.kind, p.name, addr, action, r.URL.Path, status, ms(time.Now())); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelError, "audit record failed", slog.String("action", action), slog.Any("err", err))
	}
}

// GET /api/atlas/v2/orgs/{orgId}/events (organization owners): the org's
// audit trail, newest first; ?itemsPerPage (default 100, at most 500).
func (s *Server) handleAuditEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	limit := 100
	if v := r.URL.Query().Get("itemsPerPage"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return badRequest("INVALID_QUERY_PARAMETER", "itemsPerPage %q: want an integer from 1 to 500", v).onField("itemsPerPage")
		}
		limit = n
	}
	rows, err := s.store.db.QueryContext(ctx, `SELECT id, group_id, principal_id, principal_kind, principal_name, remote_addr, action, target, status, created_at
		FROM audit_events WHERE org_id = ? ORDER BY id DESC LIMIT ?`, orgID, limit)
	if err != nil {
		return err
	}
	defer rows.Close()
	page := api.Page[api.AuditEvent]{Results: []api.AuditEvent{}}
	for rows.Next() {
		var e api.AuditEvent
		var id, created int64
		var pid, kind, name string
		if err := rows.Scan(&id, &e.GroupID, &pid, &kind, &name, &e.RemoteAddress, &e.Action, &e.Target, &e.Status, &created); err != nil {
			return err
		}
		e.ID, e.Created, e.OrgID = strconv.FormatInt(id, 10), fromMS(created), orgID
		if kind == "user" {
			e.UserID, e.Username, e.EventTypeName = pid, name, "USER_ACTION"
		} else if kind == "agent" { // a held agent registration (agentcreds.go)
			e.Hostname, e.EventTypeName = name, e.Action
		} else {
			e.APIKeyID, e.PublicKey, e.EventTypeName = pid, name, "API_KEY_ACTION"
		}
		if e.Action == "POST /api/session" {
			e.EventTypeName = "SUCCESSFUL_LOGIN_AUDIT"
		}
		page.Results = append(page.Results, e)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}
