package agent

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mdb"
)

// Source is a source deployment the agent can reach.
type Source struct {
	// Name identifies the deployment to the control plane (source.clusterName).
	Name string
	// URI is the deployment's connection string. It may carry a user without
	// a password; Password then supplies it.
	URI mdb.URI
	// Password, when set, replaces the password of URI's user.
	Password string
}

// ParseSource parses "name=URI" as given to --source.
func ParseSource(s string) (Source, error) {
	name, uri, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || uri == "" {
		return Source{}, errors.New("--source wants name=mongodb://host:port/…")
	}
	u := mdb.URI(strings.TrimSpace(uri))
	if err := u.Validate(); err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	return Source{Name: name, URI: u}, nil
}

// PasswordEnv is the environment variable that holds the password of source
// name: LIVEMIGRATE_SOURCE_<NAME>_PASSWORD with the name upper-cased and every
// character outside [A-Z0-9] replaced by '_'.
func PasswordEnv(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return "LIVEMIGRATE_SOURCE_" + b.String() + "_PASSWORD"
}

// ReadPasswordFile reads a password file, trimming one trailing newline.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// baseURI is the configured connection string with the configured password.
func (s Source) baseURI() (*url.URL, error) {
	u, err := url.Parse(s.URI.Raw())
	if err != nil {
		return nil, fmt.Errorf("source %s: connection string %s does not parse", s.Name, s.URI)
	}
	if s.Password != "" && u.User != nil {
		u.User = url.UserPassword(u.User.Username(), s.Password)
	}
	return u, nil
}

// connectionFor is the connection string for a migration request: the
// request's credentials unless the agent manages authentication, and TLS
// with the request's CA file when asked.
func (s Source) connectionFor(src api.MigrationSource) (mdb.URI, error) {
	u, err := s.baseURI()
	if err != nil {
		return "", err
	}
	if !src.ManagedAuthentication && src.Username != "" {
		u.User = url.UserPassword(src.Username, src.Password)
		q := u.Query()
		if q.Get("authSource") == "" {
			q.Set("authSource", "admin")
		}
		u.RawQuery = q.Encode()
	}
	if src.SSL || src.CACertificatePath != "" {
		q := u.Query()
		q.Del("ssl")
		q.Set("tls", "true")
		if src.CACertificatePath != "" {
			q.Del("sslCAFile")
			q.Set("tlsCAFile", src.CACertificatePath)
		}
		u.RawQuery = q.Encode()
	}
	return mdb.URI(u.String()), nil
}

// tlsEnabled reports whether connections to the source use TLS.
func tlsEnabled(uri mdb.URI) bool {
	u, err := url.Parse(uri.Raw())
	if err != nil {
		return false
	}
	q := u.Query()
	return strings.EqualFold(q.Get("tls"), "true") || strings.EqualFold(q.Get("ssl"), "true") || u.Scheme == "mongodb+srv"
}

// caFile returns the tlsCAFile of uri, if any.
func caFile(uri mdb.URI) string {
	u, err := url.Parse(uri.Raw())
	if err != nil {
		return ""
	}
	q := u.Query()
	if f := q.Get("tlsCAFile"); f != "" {
		return f
	}
	return q.Get("sslCAFile")
}

// destinationURI is the destination's connection string with its credentials.
func destinationURI(d api.DestinationCluster) (mdb.URI, error) {
	u, err := url.Parse(d.ConnectionString)
	if err != nil {
		return "", fmt.Errorf("destination %s: connection string %s does not parse", d.Name, mdb.Redact(d.ConnectionString))
	}
	if d.Username != "" {
		u.User = url.UserPassword(d.Username, d.Password)
	}
	return mdb.URI(u.String()), nil
}
