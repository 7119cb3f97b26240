package controlplane

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// Cookie and header names of browser sessions.
const (
	sessionCookie = "livemigrate_session"
	csrfHeader    = "X-CSRF-Token"
)

// principal is the authenticated caller of an Admin API request.
type principal struct {
	id    string
	kind  string // "user" or "apikey"
	name  string
	admin bool
	roles []api.Role
}

// orgRole tells what p may do in org orgID: own it, read it, or nothing.
func (p *principal) orgRole(orgID string) (owner, reader bool) {
	if p.admin {
		return true, true
	}
	for _, r := range p.roles {
		if r.OrgID != orgID {
			continue
		}
		reader = true // any role in the org or one of its projects lets one see the org
		if r.GroupID == "" && r.RoleName == api.RoleOrgOwner {
			owner = true
		}
	}
	return owner, reader
}

// projectRole tells what p may do in project groupID of org orgID.
func (p *principal) projectRole(orgID, groupID string) (owner, reader bool) {
	if p.admin {
		return true, true
	}
	for _, r := range p.roles {
		if r.OrgID != orgID {
			continue
		}
		switch {
		case r.GroupID == "" && r.RoleName == api.RoleOrgOwner:
			owner, reader = true, true
		case r.GroupID == "" && r.RoleName == api.RoleOrgMember:
			reader = true
		case r.GroupID == groupID && r.RoleName == api.RoleGroupOwner:
			owner, reader = true, true
		case r.GroupID == groupID && r.RoleName == api.RoleGroupReadOnly:
			reader = true
		}
	}
	return owner, reader
}

// authenticate resolves the caller from the Authorization header (Digest
// with an API key, Basic with an API key or user, Bearer with a service
// account's token) or the session cookie.
// Session requests with unsafe methods must carry the session's CSRF token.
// Digest, Basic and cookies are what a browser may attach by itself (ambient
// credentials), so unsafe requests authenticated by them must also come from
// our own origin and carry JSON, if anything (checkAmbient).
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, params, _ := strings.Cut(h, " ")
		var p *principal
		var err error
		switch strings.ToLower(scheme) {
		case "bearer":
			// A service account's token: never attached by a browser by
			// itself, so no same-origin check.
			return s.checkBearer(ctx, params)
		case "digest":
			p, err = s.checkDigest(ctx, r, params)
		case "basic":
			user, pass, ok := r.BasicAuth()
			if !ok {
				return nil, errUnauthenticated
			}
			p, err = s.checkBasic(r, user, pass)
		default:
			return nil, errUnauthenticated
		}
		if err != nil {
			return nil, err
		}
		return p, s.checkAmbient(r)
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, errUnauthenticated
	}
	sess, err := s.store.Session(ctx, tokenHash(c.Value))
	if errors.Is(err, errNotFound) || (err == nil && time.Now().UnixMilli() > ms(sess.expiresAt)) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if !safeMethod(r.Method) {
		if h := r.Header.Get(csrfHeader); h == "" || subtle.ConstantTimeCompare([]byte(h), []byte(sess.csrfToken)) != 1 {
			return nil, errCSRF
		}
	}
	if err := s.checkAmbient(r); err != nil {
		return nil, err
	}
	return s.loadPrincipal(ctx, sess.principalID)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkAmbient refuses unsafe requests that a foreign web page could have
// made with credentials the browser attaches by itself: any request that
// is not same-origin (Sec-Fetch-Site, else Origin), and any body that is
// not JSON by its Content-Type (HTML forms and no-CORS fetches can send only
// form and text types).
func (s *Server) checkAmbient(r *http.Request) error {
	if safeMethod(r.Method) {
		return nil
	}
	if !s.sameOrigin(r) {
		return errCrossSite
	}
	return requireJSONBody(r)
}

// sameOrigin reports whether r comes from a page of this server (or from a
// client that is not a browser: such clients send neither header).
func (s *Server) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // includes "null"
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	ext, err := url.Parse(s.opts.ExternalURL)
	return err == nil && strings.EqualFold(u.Host, ext.Host) && u.Scheme == ext.Scheme
}

// requireJSONBody refuses a request body whose Content-Type is not JSON
// (or is missing). A chunked body without Content-Type is looked into: the
// Atlas SDK's digest transport sends empty bodies chunked.
func requireJSONBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return nil
	}
	if ct == "" && r.ContentLength < 0 {
		br := bufio.NewReader(r.Body)
		if _, err := br.Peek(1); err == io.EOF {
			return nil
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{br, r.Body}
	}
	if !isJSONMediaType(ct) {
		return errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type %q: request bodies must be application/json or an application/vnd.atlas.*+json version", ct)
	}
	return nil
}

// looksLikeBrowser reports whether r comes from a web browser (or the web
// UI's scripts), which must never be offered a scheme it would prompt for
// and cache.
func looksLikeBrowser(r *http.Request) bool {
	h := r.Header
	return h.Get("Sec-Fetch-Mode") != "" || h.Get("Sec-Fetch-Site") != "" || h.Get("X-Requested-With") != "" ||
		strings.Contains(h.Get("User-Agent"), "Mozilla/")
}

// checkBasic checks a name and secret (an API key or a user's password):
// credentials verified in the last minutes are recognized by their hash
// alone; others are throttled (throttle.go) before anything is hashed.
func (s *Server) checkBasic(r *http.Request, name, secret string) (*principal, error) {
	ctx := r.Context()
	cacheKey := tokenHash(name + "\x00" + secret)
	s.credMu.Lock()
	e, ok := s.credCache[cacheKey]
	s.credMu.Unlock()
	if ok && time.Now().Before(e.until) {
		p, err := s.loadPrincipal(ctx, e.principalID)
		if err == nil {
			return p, nil
		}
	}
	keys, err := s.admitCredential(r, name)
	if err != nil {
		return nil, err
	}
	c, err := s.store.Credential(ctx, name)
	if errors.Is(err, errNotFound) {
		checkPassword(dummyPasswordHash(), secret) // the same work as a known user's
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	var good bool
	if c.kind == "apikey" {
		good = subtle.ConstantTimeCompare([]byte(tokenHash(secret)), []byte(c.secretHash)) == 1
	} else {
		good = checkPassword(c.secretHash, secret)
	}
	if !good {
		return nil, errUnauthenticated
	}
	s.throttle.succeeded(keys)
	s.credMu.Lock()
	if len(s.credCache) > 10000 {
		clear(s.credCache)
	}
	s.credCache[cacheKey] = credEntry{principalID: c.id, until: time.Now().Add(5 * time.Minute)}
	s.credMu.Unlock()
	return s.loadPrincipal(ctx, c.id)
}

// forgetCredentials drops the verified-credential cache entries of a
// deleted principal.
func (s *Server) forgetCredentials(principalID string) {
	s.credMu.Lock()
	defer s.credMu.Unlock()
	for k, e := range s.credCache {
		if e.principalID == principalID {
			delete(s.credCache, k)
		}
	}
}

// loadPrincipal loads the caller id; errUnauthenticated when it is gone.
func (s *Server) loadPrincipal(ctx context.Context, id string) (*principal, error) {
	p, err := s.store.Principal(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, errUnauthenticated
	}
	return p, err
}

// authed wraps an Admin API handler: it authenticates, sets the principal in
// the context and maps the handler's error to the envelope.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, p *principal) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			// API clients are challenged with Digest first (the Atlas SDK
			// and CLI read only the first challenge), then Basic. Browsers
			// get no challenge: they would prompt for it and then attach
			// the credentials to cross-site requests by themselves.
			var ae *apiError
			var de *digestError
			if errors.As(err, &ae) && ae.status == http.StatusUnauthorized && !looksLikeBrowser(r) {
				stale := errors.As(err, &de) && de.stale
				w.Header().Add("WWW-Authenticate", s.digest.challenge(stale))
				w.Header().Add("WWW-Authenticate", `Basic realm="`+digestRealm+`"`)
			}
			s.writeError(w, r, err)
			return
		}
		ctx := r.Context()
		if safeMethod(r.Method) {
			if err := h(w, r, p); err != nil {
				s.writeError(w, r, err)
			}
			return
		}
		// State-changing requests go into the audit trail with their answer.
		a := &auditInfo{}
		r = r.WithContext(context.WithValue(ctx, auditKey{}, a))
		rec := &statusRecorder{ResponseWriter: w}
		if err := h(rec, r, p); err != nil {
			s.writeError(rec, r, err)
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.audit(r, p, a, rec.status)
	}
}

// requireOrg checks p's access to org orgID: 404 when p has no role there
// (existence is not leaked), 403 when p may read but owner is needed.
func (s *Server) requireOrg(ctx context.Context, p *principal, orgID string, needOwner bool) error {
	_, err := s.store.Org(ctx, orgID)
	if err != nil && !errors.Is(err, errNotFound) {
		return err
	}
	owner, reader := p.orgRole(orgID)
	if err != nil || !reader {
		return orgNotFound(orgID)
	}
	if needOwner && !owner {
		return errForbidden
	}
	return nil
}

// requireProject loads project groupID and checks p's access to it like requireOrg.
func (s *Server) requireProject(ctx context.Context, p *principal, groupID string, needOwner bool) (api.Project, error) {
	pr, err := s.store.Project(ctx, groupID)
	if errors.Is(err, errNotFound) {
		return pr, groupNotFound(groupID)
	}
	if err != nil {
		return pr, err
	}
	owner, reader := p.projectRole(pr.OrgID, pr.ID)
	if !reader {
		return pr, groupNotFound(groupID)
	}
	if needOwner && !owner {
		return pr, errForbidden
	}
	return pr, nil
}

// handleLogin is POST /api/session: username + password → session cookie
// (HttpOnly, SameSite=Strict) and the CSRF token in the body. Only
// same-origin JSON requests may log in.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.login(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	// Login CSRF: a foreign page must not sign the browser in (to an
	// account of the attacker's): same origin and a JSON body only.
	if !s.sameOrigin(r) {
		return errCrossSite
	}
	if r.Header.Get("Content-Type") == "" {
		return errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "POST /api/session needs Content-Type: application/json")
	}
	var req api.SessionRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	p, err := s.checkBasic(r, req.Username, req.Password)
	if err != nil {
		return err
	}
	if p.kind != "user" {
		return errUnauthenticated
	}
	token, csrf := randomToken(32), randomToken(24)
	expires := time.Now().Add(s.timing.SessionTTL)
	if err := s.store.CreateSession(r.Context(), tokenHash(token), session{principalID: p.id, csrfToken: csrf, expiresAt: expires}); err != nil {
		return err
	}
	s.audit(r, p, nil, http.StatusOK)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || s.secureCookies, Expires: expires})
	writeJSON(w, http.StatusOK, api.Session{Username: p.name, CSRFToken: csrf, ExpiresAt: fromMS(ms(expires)), Roles: p.roles})
	return nil
}

// handleSession is GET /api/session: who is logged in (and the CSRF token again).
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return badRequest("NO_SESSION", "GET /api/session needs the session cookie")
	}
	st, err := s.store.Session(r.Context(), tokenHash(c.Value))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Session{Username: p.name, CSRFToken: st.csrfToken, ExpiresAt: st.expiresAt, Roles: p.roles})
	return nil
}

// handleLogout is DELETE /api/session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.store.DeleteSession(r.Context(), tokenHash(c.Value)); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
