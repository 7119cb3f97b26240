package controlplane

import (
	"context"
	"crypto/subtle"
	"database/sql"
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
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO principals (id, kind, name, secret_hash, description, display_name, service_account, created_at) VALUES (?, 'apikey', ?, '', ?, ?, 1, ?)`,
			pid, sa.ClientID, sa.Description, sa.Name, ms(now)); err != nil {
			return err
		}
		if err := insertRoles(ctx, tx, pid, roles); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO service_account_secrets (id, principal_id, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			secret.ID, pid, tokenHash(secret.Secret), ms(now), ms(secret.ExpiresAt))
		return err
	})
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
	var pid string
	err := s.store.db.QueryRowContext(ctx, `SELECT p.id FROM principals p WHERE p.name = ? AND p.service_account = 1
		AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?)`, clientID, orgID).Scan(&pid)
	if isNoRows(err) {
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
	rows, err := s.store.db.QueryContext(ctx, `SELECT p.id, p.name, p.display_name, p.description, p.created_at FROM principals p
		WHERE p.service_account = 1 AND EXISTS (SELECT 1 FROM roles r WHERE r.principal_id = p.id AND r.org_id = ?) ORDER BY p.created_at, p.id`, orgID)
	if err != nil {
		return err
	}
	type row struct {
		id string
		sa api.ServiceAccount
	}
	var list []row
	for rows.Next() {
		var x row
		var created int64
		if err := rows.Scan(&x.id, &x.sa.ClientID, &x.sa.Name, &x.sa.Description, &created); err != nil {
			rows.Close()
			return err
		}
		x.sa.CreatedAt = fromMS(created)
		list = append(list, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	page := api.Page[api.ServiceAccount]{Results: []api.ServiceAccount{}}
	for _, x := range list {
		roles, err := s.rolesOf(ctx, s.store.db, x.id)
		if err != nil {
			return err
		}
		x.sa.Roles = []string{}
		for _, r := range roles {
			x.sa.Roles = append(x.sa.Roles, string(r.RoleName))
		}
		x.sa.Secrets = []api.ServiceAccountSecret{}
		srows, err := s.store.db.QueryContext(ctx, `SELECT id, created_at, expires_at FROM service_account_secrets WHERE principal_id = ? ORDER BY created_at`, x.id)
		if err != nil {
			return err
		}
		for srows.Next() {
			var sec api.ServiceAccountSecret
			var c, e int64
			if err := srows.Scan(&sec.ID, &c, &e); err != nil {
				srows.Close()
				return err
			}
			sec.CreatedAt, sec.ExpiresAt, sec.MaskedSecretValue = fromMS(c), fromMS(e), "mdb_sa_sk_****"
			x.sa.Secrets = append(x.sa.Secrets, sec)
		}
		srows.Close()
		if err := srows.Err(); err != nil {
			return err
		}
		page.Results = append(page.Results, x.sa)
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
	if _, err := s.store.db.ExecContext(ctx, `DELETE FROM principals WHERE id = ?`, pid); err != nil {
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
	rows, err := s.store.db.QueryContext(ctx, `SELECT p.id, s.id, s.secret_hash FROM principals p JOIN service_account_secrets s ON s.principal_id = p.id
		WHERE p.name = ? AND p.service_account = 1 AND s.expires_at > ?`, id, ms(time.Now()))
	if err != nil {
		s.writeError(w, r, err)
		return "", "", false
	}
	defer rows.Close()
	want := tokenHash(secret)
	for rows.Next() {
		var p, sid, hash string
		if err := rows.Scan(&p, &sid, &hash); err != nil {
			s.writeError(w, r, err)
			return "", "", false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(hash)) == 1 {
			pid, secretID, ok = p, sid, true
		}
	}
	if err := rows.Err(); err != nil {
		s.writeError(w, r, err)
		return "", "", false
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
	if _, err := s.store.db.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE expires_at < ?`, ms(now)); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.store.db.ExecContext(ctx, `INSERT INTO oauth_tokens (token_hash, principal_id, secret_id, expires_at) VALUES (?, ?, ?, ?)`,
		tokenHash(token), pid, secretID, ms(now.Add(oauthTokenTTL))); err != nil {
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
	if _, err := s.store.db.ExecContext(r.Context(), `DELETE FROM oauth_tokens WHERE token_hash = ? AND principal_id = ?`, tokenHash(r.PostForm.Get("token")), pid); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

var errTokenExpired = errorf(http.StatusUnauthorized, "UNAUTHORIZED", "the Bearer token is expired or revoked: get a new one at POST /api/oauth/token")

// checkBearer authenticates a service account's access token.
func (s *Server) checkBearer(ctx context.Context, token string) (*principal, error) {
	var pid string
	var expires int64
	err := s.store.db.QueryRowContext(ctx, `SELECT principal_id, expires_at FROM oauth_tokens WHERE token_hash = ?`, tokenHash(strings.TrimSpace(token))).Scan(&pid, &expires)
	if isNoRows(err) || (err == nil && time.Now().UnixMilli() > expires) {
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
