package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livemigrate/livemigrate/internal/mdb"
)

// Input limits. Every name, hostname and URI the API stores is checked
// against them before anything is written.
const (
	maxNameLength     = 64   // org, project, cluster, user names
	maxTextLength     = 256  // descriptions
	maxHostnameLength = 253  // agents' hostnames (DNS limit)
	maxURLLength      = 2048 // webhook URLs
)

// checkText refuses what makes a stored string ambiguous or dangerous to
// display: invalid UTF-8, NUL and other control characters, and the
// bidirectional-override and invisible formatting characters (U+202A–202E,
// U+2066–2069, U+200B–200F, U+061C, U+FEFF) that make a name read other
// than it is.
func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return badRequest("INVALID_ATTRIBUTE", "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return badRequest("INVALID_ATTRIBUTE", "%s is %d characters long; at most %d are allowed", field, n, max)
	}
	for i, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.Is(unicode.Cf, r) {
			return badRequest("INVALID_ATTRIBUTE", "%s has the control or formatting character U+%04X at byte %d; use printable characters only", field, r, i)
		}
	}
	return nil
}

// checkName checks a required name: not blank, no leading or trailing
// space, within maxNameLength and checkText.
func checkName(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return badRequest("MISSING_ATTRIBUTE", "%s is required", field)
	}
	if strings.TrimSpace(v) != v {
		return badRequest("INVALID_ATTRIBUTE", "%s has leading or trailing spaces", field)
	}
	return checkText(field, v, maxNameLength)
}

const hostnameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

// checkHostname checks an agent's hostname: 1–253 characters of letters,
// digits, '.', '-' and '_'.
func checkHostname(field, v string) error {
	if v == "" {
		return badRequest("MISSING_ATTRIBUTE", "%s is required", field)
	}
	if len(v) > maxHostnameLength {
		return badRequest("INVALID_ATTRIBUTE", "%s is %d characters long; at most %d are allowed", field, len(v), maxHostnameLength)
	}
	for _, r := range v {
		if !strings.ContainsRune(hostnameChars, r) {
			return badRequest("INVALID_ATTRIBUTE", "%s %q: a hostname has only letters, digits, '.', '-' and '_'", field, strings.ToValidUTF8(v, "?"))
		}
	}
	return nil
}

// parseConnectionString parses a connection string from a request; the 400
// names the problem and never echoes a secret.
func parseConnectionString(field, v string) (*mdb.ConnString, error) {
	if v == "" {
		return nil, badRequest("MISSING_ATTRIBUTE", "%s is required (mongodb://… or mongodb+srv://…)", field)
	}
	c, err := mdb.ParseURI(v)
	if err != nil {
		return nil, badRequest("INVALID_ATTRIBUTE", "%s: %v", field, err)
	}
	return c, nil
}

// clampSeconds converts a client-given number of seconds to a duration of at
// most limit, without overflowing.
func clampSeconds(n int64, limit time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if n >= int64(limit/time.Second) {
		return limit
	}
	return time.Duration(n) * time.Second
}

// Webhook targets. Loopback, link-local (cloud metadata at 169.254.169.254
// included), private, CGNAT, multicast and unspecified addresses are refused
// unless Options.WebhookAllowPrivate is set: the control plane runs next to
// production systems, and a webhook must not become a way to reach them.

var errPrivateTarget = errors.New("webhook target is a loopback, link-local, private or otherwise internal address (start the server with --webhook-allow-private to allow it)")

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// internalAddr reports whether a is an address a webhook may not target.
func internalAddr(a netip.Addr) bool {
	a = a.Unmap()
	return !a.IsValid() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsPrivate() || a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() ||
		cgnat.Contains(a) || a == netip.MustParseAddr("255.255.255.255")
}

// metadataHosts are cloud metadata names refused whatever they resolve to.
var metadataHosts = map[string]bool{"metadata.google.internal": true, "metadata": true, "instance-data": true}

// checkWebhookURL checks a webhook URL at registration: http or https, a
// host, no fragment, within maxURLLength, and (unless private targets are
// allowed) a host that is not, and does not resolve to, an internal address.
func (s *Server) checkWebhookURL(ctx context.Context, raw string) (*url.URL, error) {
	if err := checkText("url", raw, maxURLLength); err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return nil, badRequest("INVALID_ATTRIBUTE", "url must be an http:// or https:// URL with a host")
	}
	if s.opts.WebhookAllowPrivate {
		return u, nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if metadataHosts[host] || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return nil, badRequest("INVALID_ATTRIBUTE", "url: %v", errPrivateTarget)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if internalAddr(a) {
			return nil, badRequest("INVALID_ATTRIBUTE", "url: %v", errPrivateTarget)
		}
		return u, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// A name that does not resolve now is accepted: the address is checked
	// again at every delivery, when it is dialled.
	addrs, _ := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	for _, a := range addrs {
		if internalAddr(a) {
			return nil, badRequest("INVALID_ATTRIBUTE", "url: %s resolves to %s: %v", host, a, errPrivateTarget)
		}
	}
	return u, nil
}

// webhookDialControl refuses, at connect time, an internal address: a name
// that resolved to a public address at registration may resolve elsewhere
// later (DNS rebinding), so the address actually dialled is checked.
func webhookDialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook dial %s: %w", address, err)
	}
	if internalAddr(ap.Addr()) {
		return fmt.Errorf("webhook dial %s: %w", address, errPrivateTarget)
	}
	return nil
}

// newWebhookClient is the default webhook client: a 10 s timeout, no
// proxy from the environment, no redirects (a redirect could lead to an
// internal address), and, unless allowPrivate, internal addresses refused
// at dial time.
func newWebhookClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		d.Control = webhookDialControl
	}
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 5 * time.Second, MaxIdleConns: 4, IdleConnTimeout: time.Minute},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
