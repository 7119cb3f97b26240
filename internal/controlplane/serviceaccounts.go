package controlplane

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// Service accounts, as Atlas's: an organization owner creates one (client
// ID + secret with an expiry); the client trades them at POST
// /api/oauth/token (client-credentials grant, client authenticated with
// Basic as the Atlas SDK's UseOAuthAuth sends it, or form fields) for a
// Bearer token valid oauthTokenTTL. Tokens are stored hashed; deleting the
// service account, or the token at POST /api/oauth/revoke, refuses it at once.
const (
	oauthTokenTTL        = time.Hour
	maxSecretExpiryHours = 365 * 24
	maxOAuthBodyBytes    = 16 << 10
)

// POST /api/atlas/v2/orgs/{orgId}/serviceAccounts (organization owners).
func (s *Server) handleCreateServiceAccount(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	var req api.ServiceAccountRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(req.Name) == "":
		return badRequest("MISSING_ATTRIBUTE", "name is required").onField("name")
	case len(req.Roles) == 0:
		return badRequest("MISSING_ATTRIBUTE", "roles: at least one organization role is required").onField("roles")
	case req.SecretExpiresAfterHours < 1 || req.SecretExpiresAfterHours > maxSecretExpiryHours:
		return badRequest("INVALID_ATTRIBUTE", "secretExpiresAfterHours must be 1 to %d", maxSecretExpiryHours).onField("secretExpiresAfterHours")
	}
	roles := make([]api.Role, len(req.Roles))
	for i, name := range req.Roles {
		if name != string(api.RoleOrgOwner) && name != string(api.RoleOrgMember) {
			return badRequest("INVALID_ROLE", "role %q: a service account takes organization roles ORG_OWNER or ORG_MEMBER", name).onField("roles")
		}
		roles[i] = api.Role{OrgID: orgID, RoleName: api.RoleName(name)}
	}
	now := time.Now()
	sa := api.ServiceAccount{ClientID: "mdb_sa_id_" + newID(now), CreatedAt: fromMS(ms(now)), Name: req.Name, Description: req.Description}
	secret := api.ServiceAccountSecret{ID: newID(now), CreatedAt: fromMS(ms(now)), ExpiresAt: fromMS(ms(now.Add(time.Duration(req.SecretExpiresAfterHours) * time.Hour))),
		Secret: "mdb_sa_sk_" + randomToken(30)}
	pid := newID(now)
	err := s.store.CreateServiceAccount(ctx, newServiceAccount{principalID: pid, sa: sa, roles: roles,
		secretID: secret.ID, secretHash: tokenHash(secret.Secret), expiresAt: secret.ExpiresAt}, now)
	if err != nil {
		return err
	}
	sa.Roles, sa.Secrets = req.Roles, []api.ServiceAccountSecret{secret}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, sa)
	return nil
}

// serviceAccountIn loads the principal ID of service account clientID in org orgID.
func (s *Server) serviceAccountIn(ctx context.Context, orgID, clientID string) (string, error) {
	pid, err := s.store.ServiceAccountIn(ctx, orgID, clientID)
	if errors.Is(err, errNotFound) {
		return "", notFound("service account", clientID)
	}
	return pid, err
}

// GET /api/atlas/v2/orgs/{orgId}/serviceAccounts (organization owners).
func (s *Server) handleListServiceAccounts(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	list, err := s.store.ServiceAccountsIn(ctx, orgID)
	if err != nil {
		return err
	}
	page := api.Page[api.ServiceAccount]{Results: []api.ServiceAccount{}}
	for _, sa := range list {
		for i := range sa.Secrets {
			sa.Secrets[i].MaskedSecretValue = "mdb_sa_sk_****"
		}
		page.Results = append(page.Results, sa)
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// DELETE /api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId} (organization
// owners): its secrets and tokens go with it, refused from the next request.
func (s *Server) handleDeleteServiceAccount(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	pid, err := s.serviceAccountIn(ctx, orgID, r.PathValue("clientId"))
	if err != nil {
		return err
	}
	if err := s.store.DeletePrincipal(ctx, pid); err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// oauthError answers a token-endpoint error (RFC 6749 §5.2).
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, api.OAuthError{Error: code, ErrorDescription: desc})
}

// oauthClient reads the form and authenticates the client: Basic (RFC 6749
// §2.3.1: form-urlencoded ID and secret) or client_id/client_secret fields.
// It returns the principal and the secret's ID.
func (s *Server) oauthClient(w http.ResponseWriter, r *http.Request) (pid, secretID string, ok bool) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return "", "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxOAuthBodyBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "cannot parse the form body")
		return "", "", false
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "malformed client credentials")
			return "", "", false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	keys, err := s.admitCredential(r, id)
	if err != nil {
		setRetryAfter(w, err)
		oauthError(w, http.StatusTooManyRequests, "temporarily_unavailable", err.(*throttledError).detail)
		return "", "", false
	}
	ctx := r.Context()
	secrets, err := s.store.LiveClientSecrets(ctx, id, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return "", "", false
	}
	want := tokenHash(secret)
	for _, c := range secrets {
		if subtle.ConstantTimeCompare([]byte(want), []byte(c.secretHash)) == 1 {
			pid, secretID, ok = c.principalID, c.secretID, true
		}
	}
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client, wrong or expired secret")
		return "", "", false
	}
	s.throttle.succeeded(keys)
	return pid, secretID, ok
}

// handleOAuthToken is POST /api/oauth/token, grant_type=client_credentials.
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	pid, secretID, ok := s.oauthClient(w, r)
	if !ok {
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	}
	ctx := r.Context()
	now := time.Now()
	token := "mdb_sa_at_" + randomToken(32)
	if err := s.store.IssueOAuthToken(ctx, tokenHash(token), pid, secretID, now.Add(oauthTokenTTL), now); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, api.OAuthToken{AccessToken: token, TokenType: "Bearer", ExpiresIn: int(oauthTokenTTL / time.Second)})
}

// handleOAuthRevoke is POST /api/oauth/revoke (RFC 7009): the client's own
// token is deleted; unknown tokens are answered 200 too.
func (s *Server) handleOAuthRevoke(w http.ResponseWriter, r *http.Request) {
	pid, _, ok := s.oauthClient(w, r)
	if !ok {
		return
	}
	if err := s.store.RevokeOAuthToken(r.Context(), tokenHash(r.PostForm.Get("token")), pid); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

var errTokenExpired = errorf(http.StatusUnauthorized, "UNAUTHORIZED", "the Bearer token is expired or revoked: get a new one at POST /api/oauth/token")

// checkBearer authenticates a service account's access token.
func (s *Server) checkBearer(ctx context.Context, token string) (*principal, error) {
	pid, expires, err := s.store.OAuthToken(ctx, tokenHash(strings.TrimSpace(token)))
	if errors.Is(err, errNotFound) || (err == nil && time.Now().UnixMilli() > ms(expires)) {
		return nil, errTokenExpired
	}
	if err != nil {
		return nil, err
	}
	p, err := s.loadPrincipal(ctx, pid)
	if errors.Is(err, errUnauthenticated) {
		return nil, errTokenExpired
	}
	return p, err
}
