// Package client is the one typed Go client of livemigrate's control plane:
// the Atlas-shaped Admin API (used by the CLI, the web-UI tests and the demo)
// and the agent protocol (used by the agent). Every method maps to one
// endpoint; failures the server answered are *APIError.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"

	"github.com/livemigrate/livemigrate/internal/api"
)

// Credentials authenticate requests. Use BasicAuth for the Admin API (API
// key or user) and AgentSecret for the agent protocol; nil sends none (and a
// client that called Login uses its session).
type Credentials interface {
	authorize(*http.Request)
}

type basicAuth struct{ user, pass string }

func (b basicAuth) authorize(r *http.Request) { r.SetBasicAuth(b.user, b.pass) }

// BasicAuth authenticates with an API key (public key, private key) or a
// user's username and password.
func BasicAuth(user, password string) Credentials { return basicAuth{user, password} }

type bearer string

func (b bearer) authorize(r *http.Request) { r.Header.Set("Authorization", "Bearer "+string(b)) }

// AgentSecret authenticates an agent with the secret it got at registration.
func AgentSecret(secret string) Credentials { return bearer(secret) }

// APIError is an error response of the control plane, with the envelope's fields.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// ErrorCode is the UPPER_SNAKE code, e.g. "RESOURCE_NOT_FOUND".
	ErrorCode string
	Detail    string
	Reason    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.StatusCode, e.ErrorCode, e.Detail)
}

// IsNotFound reports whether err is an APIError with status 404.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is an APIError with status 409.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsForbidden reports whether err is an APIError with status 403.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsUnauthorized reports whether err is an APIError with status 401.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

func hasStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == status
}

// Client calls one control plane. It is safe for concurrent use.
type Client struct {
	base  string
	creds Credentials
	http  *http.Client

	mu   sync.Mutex
	csrf string // set by Login
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (timeouts, TLS, transport). Its cookie
// jar is replaced when nil.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// New returns a client for the control plane at baseURL (e.g.
// "http://localhost:8080"; no path) with creds (may be nil).
func New(baseURL string, creds Credentials, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), creds: creds, http: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	if c.http.Jar == nil {
		h := *c.http
		h.Jar, _ = cookiejar.New(nil)
		c.http = &h
	}
	return c
}

// BaseURL returns the control plane's base URL.
func (c *Client) BaseURL() string { return c.base }

// ParseLinkToken decodes a link token (base64url of the JSON of api.LinkTokenClaims).
func ParseLinkToken(token string) (api.LinkTokenClaims, error) {
	var claims api.LinkTokenClaims
	token = strings.TrimSpace(token)
	if token == "" {
		return claims, errors.New("parse link token: it is empty")
	}
	if len(token) > 4096 {
		return claims, fmt.Errorf("parse link token: %d bytes, longer than any link token (4096)", len(token))
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return claims, errors.New("parse link token: not base64url (copy the whole token, without padding or line breaks)")
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		return api.LinkTokenClaims{}, errors.New("parse link token: not the JSON of a link token")
	}
	if claims.URL == "" || claims.Secret == "" || claims.OrgID == "" {
		return claims, errors.New("parse link token: missing url, orgId or secret")
	}
	u, err := url.Parse(claims.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return claims, errors.New("parse link token: its url is not an http(s) URL of a control plane")
	}
	return claims, nil
}

// do sends in (when not nil) as JSON and decodes a 2xx response into out
// (when not nil). mediaType is the Atlas version for Accept and Content-Type.
func (c *Client) do(ctx context.Context, method, path, mediaType string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if mediaType == "" {
		mediaType = "application/json"
	}
	req.Header.Set("Accept", mediaType)
	if in != nil {
		req.Header.Set("Content-Type", mediaType)
	}
	if c.creds != nil {
		c.creds.authorize(req)
	}
	c.mu.Lock()
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	c.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{StatusCode: resp.StatusCode}
		var env api.ErrorEnvelope
		if json.Unmarshal(data, &env) == nil && env.ErrorCode != "" {
			ae.ErrorCode, ae.Detail, ae.Reason = env.ErrorCode, env.Detail, env.Reason
		} else {
			ae.ErrorCode, ae.Reason = "HTTP_ERROR", http.StatusText(resp.StatusCode)
			ae.Detail = strings.TrimSpace(string(data))
		}
		return ae
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }
