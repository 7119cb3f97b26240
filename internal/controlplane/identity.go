package controlplane

import (
	"context"
	"errors"
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
	o := firstOwner{orgID: newID(now), orgName: opts.OrgName, projectID: newID(now), principalID: newID(now),
		username: opts.Username, passwordHash: hashPassword(password)}
	created, err = s.store.CreateFirstOwner(ctx, o, now)
	if errors.Is(err, errExists) {
		err = conflict("DUPLICATE_ORG_NAME", "an organization named %q exists", opts.OrgName)
	}
	if !created || err != nil {
		return false, "", "", err
	}
	return true, password, o.orgID, nil
}

// GET /api/atlas/v2/orgs
func (s *Server) handleListOrgs(w http.ResponseWriter, r *http.Request, p *principal) error {
	orgs, err := s.store.Orgs(r.Context())
	if err != nil {
		return err
	}
	page := api.Page[api.Org]{Results: []api.Org{}}
	for _, o := range orgs {
		if _, reader := p.orgRole(o.ID); reader {
			page.Results = append(page.Results, o)
		}
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
	err := s.store.CreateOrg(r.Context(), org, now)
	if errors.Is(err, errExists) {
		return conflict("DUPLICATE_ORG_NAME", "an organization named %q exists", org.Name)
	}
	if err != nil {
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
	o, err := s.store.Org(r.Context(), orgID)
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, o)
	return nil
}

// GET /api/atlas/v2/groups
func (s *Server) handleListProjects(w http.ResponseWriter, r *http.Request, p *principal) error {
	projects, err := s.store.Projects(r.Context())
	if err != nil {
		return err
	}
	page := api.Page[api.Project]{Results: []api.Project{}}
	for _, pr := range projects {
		if _, reader := p.projectRole(pr.OrgID, pr.ID); reader {
			page.Results = append(page.Results, pr)
		}
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
	err := s.store.CreateProject(r.Context(), pr, now)
	if errors.Is(err, errExists) {
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
			pr, err := s.store.Project(ctx, r.GroupID)
			if errors.Is(err, errNotFound) || (err == nil && pr.OrgID != orgID) {
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
	var err error
	u.Roles, err = s.store.CreateUser(ctx, newPrincipal{id: u.ID, name: u.Username, secretHash: hashPassword(req.Password), roles: req.Roles}, now)
	if errors.Is(err, errExists) {
		return conflict("USER_ALREADY_EXISTS", "username %q is not available: choose another", req.Username).withParams(req.Username)
	}
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
	var err error
	k.Roles, err = s.store.CreateAPIKey(ctx, newPrincipal{id: k.ID, name: k.PublicKey, secretHash: tokenHash(k.PrivateKey),
		digestHA1: s.sealer.seal([]byte(digestHA1(k.PublicKey, k.PrivateKey))), desc: k.Desc, roles: req.Roles}, now)
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, k)
	return nil
}
