package controlplane

import (
	"context"
	"errors"
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
	list, err := s.store.PrincipalsIn(ctx, orgID, "apikey")
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
	list, err := s.store.PrincipalsIn(ctx, orgID, "user")
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

// orgRolesOf is principalID's roles in org orgID only (roles elsewhere are
// not this org's business).
func (s *Server) orgRolesOf(ctx context.Context, principalID, orgID string) ([]api.Role, error) {
	all, err := s.store.Roles(ctx, principalID)
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
	err := s.store.DeleteAPIKey(ctx, orgID, keyID)
	if errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "API_KEY_NOT_FOUND", "No API key with ID %s exists in organization %s.", keyID, orgID).withParams(keyID, orgID)
	}
	if err != nil {
		return err
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
	switch err := s.store.RemoveUserFromOrg(ctx, orgID, userID); {
	case errors.Is(err, errNotFound):
		return errorf(http.StatusNotFound, "USER_NOT_FOUND", "No user with ID %s exists in organization %s.", userID, orgID).withParams(userID, orgID)
	case errors.Is(err, errLastOwner):
		return conflict("CANNOT_REMOVE_LAST_OWNER", "user %s is the last owner of organization %s: make another user owner first", userID, orgID)
	case err != nil:
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
		if pr, err := s.store.Project(ctx, groupID); err == nil {
			orgID = pr.OrgID
		}
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
	a := auditRecord{orgID: orgID, groupID: groupID, principalID: p.id, principalKind: p.kind, name: p.name, remoteAddr: addr,
		action: action, target: r.URL.Path, status: status, createdAt: time.Now()}
	if err := s.store.RecordAudit(ctx, a); err != nil {
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
	trail, err := s.store.AuditTrail(ctx, orgID, limit)
	if err != nil {
		return err
	}
	page := api.Page[api.AuditEvent]{Results: []api.AuditEvent{}}
	for _, a := range trail {
		e := api.AuditEvent{ID: strconv.FormatInt(a.id, 10), Created: a.createdAt, OrgID: a.orgID, GroupID: a.groupID,
			RemoteAddress: a.remoteAddr, Action: a.action, Target: a.target, Status: a.status}
		switch a.principalKind {
		case "user":
			e.UserID, e.Username, e.EventTypeName = a.principalID, a.name, "USER_ACTION"
		case "agent": // a held agent registration (agentcreds.go)
			e.Hostname, e.EventTypeName = a.name, e.Action
		default:
			e.APIKeyID, e.PublicKey, e.EventTypeName = a.principalID, a.name, "API_KEY_ACTION"
		}
		if e.Action == "POST /api/session" {
			e.EventTypeName = "SUCCESSFUL_LOGIN_AUDIT"
		}
		page.Results = append(page.Results, e)
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}
