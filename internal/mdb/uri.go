package mdb

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// URI is a MongoDB connection string. Its String and LogValue redact the
// password and every secret-bearing option, so it can be logged and put in
// errors safely.
type URI string

// String returns the connection string redacted (see Redact).
func (u URI) String() string { return Redact(string(u)) }

// LogValue implements slog.LogValuer.
func (u URI) LogValue() slog.Value { return slog.StringValue(u.String()) }

// Raw returns the connection string with its credentials, for the driver only.
func (u URI) Raw() string { return string(u) }

// Validate checks a connection string before the driver sees it (see ParseURI).
func (u URI) Validate() error {
	_, err := ParseURI(string(u))
	return err
}

// redacted replaces every secret in a redacted connection string.
const redacted = "xxxxx"

// MaxURILength is the longest connection string accepted.
const MaxURILength = 4096

// publicOptions are the connection-string options whose values are not
// secret (lower case: option names are case-insensitive). The value of
// every other option, known or not, is redacted.
var publicOptions = map[string]bool{}

func init() {
	for _, k := range []string{
		"appName", "authMechanism", "authSource", "compressors", "connect", "connectTimeoutMS",
		"directConnection", "heartbeatFrequencyMS", "journal", "loadBalanced", "localThresholdMS",
		"maxConnecting", "maxIdleTimeMS", "maxPoolSize", "maxStalenessSeconds", "minPoolSize",
		"readConcernLevel", "readPreference", "readPreferenceTags", "replicaSet", "retryReads",
		"retryWrites", "serverMonitoringMode", "serverSelectionTimeoutMS", "serverSelectionTryOnce",
		"socketTimeoutMS", "srvMaxHosts", "srvServiceName", "ssl", "sslCertificateAuthorityFile",
		"sslClientCertificateKeyFile", "sslInsecure", "sslCAFile", "timeoutMS", "tls",
		"tlsAllowInvalidCertificates", "tlsAllowInvalidHostnames", "tlsCAFile", "tlsCertificateFile",
		"tlsCertificateKeyFile", "tlsDisableCertificateRevocationCheck", "tlsDisableOCSPEndpointCheck",
		"tlsInsecure", "uuidRepresentation", "w", "waitQueueMultiple", "waitQueueTimeoutMS",
		"wTimeoutMS", "wtimeout", "zlibCompressionLevel", "gssapiServiceName", "proxyHost",
		"proxyPort", "proxyUsername",
	} {
		publicOptions[strings.ToLower(k)] = true
	}
}

// publicAuthProperties are the authMechanismProperties whose values are not
// secret; every other property (AWS_SESSION_TOKEN, …) is redacted.
var publicAuthProperties = map[string]bool{
	"SERVICE_NAME": true, "CANONICALIZE_HOST_NAME": true, "SERVICE_REALM": true,
	"SERVICE_HOST": true, "ENVIRONMENT": true, "TOKEN_RESOURCE": true,
}

const authMechanismProperties = "authmechanismproperties"

// SecretOption reports whether the value of connection-string option key
// may be secret (everything but the known public options).
func SecretOption(key string) bool { return !publicOptions[strings.ToLower(key)] }

// Redact returns a connection string with the password and the value of
// every option that is not known to be public replaced by "xxxxx". It works
// on any text, well-formed or not, and errs on the side of removing too
// much: where the user information cannot be told apart from the rest, the
// whole string after the scheme is replaced.
func Redact(s string) string {
	scheme, rest, ok := cutScheme(s)
	if !ok {
		return "<unparsable connection string>"
	}
	var b strings.Builder
	b.WriteString(scheme + "://")
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		// The driver ends the user information at the first @; with more @
		// signs, the password has an unescaped @: take everything up to the
		// last one as user information.
		end := at
		if strings.Count(rest, "@") > 1 {
			end = strings.LastIndexByte(rest, '@')
		}
		user, _, hasPassword := strings.Cut(rest[:end], ":")
		if strings.ContainsAny(user, "/?#@") {
			// An @ inside the path or the query: nothing can be trusted.
			return b.String() + "<redacted>"
		}
		b.WriteString(user)
		if hasPassword {
			b.WriteString(":" + redacted)
		}
		b.WriteByte('@')
		rest = rest[end+1:]
	}
	hosts, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts, tail = rest[:i], rest[i:]
	}
	if !plausibleHosts(hosts) {
		hosts = "<redacted>"
	}
	b.WriteString(hosts)
	path, query, hasQuery := strings.Cut(tail, "?")
	b.WriteString(path)
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(redactQuery(query))
	}
	return b.String()
}

func cutScheme(s string) (scheme, rest string, ok bool) {
	for _, sc := range []string{connstring.SchemeMongoDBSRV, connstring.SchemeMongoDB} {
		if r, ok := strings.CutPrefix(s, sc+"://"); ok {
			return sc, r, true
		}
	}
	return "", "", false
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func plausibleHosts(h string) bool {
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(".-_:,[]%", r):
		default:
			return false
		}
	}
	return true
}

// redactQuery redacts the values of secret options in a raw query string,
// keeping its separators.
func redactQuery(q string) string {
	var b strings.Builder
	for piece := range strings.FieldsFuncSeq(q, func(r rune) bool { return r == '&' || r == ';' }) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		k, v, ok := strings.Cut(piece, "=")
		key, err := url.QueryUnescape(k)
		if !ok || err != nil || !plausibleKey(key) {
			b.WriteString(redacted)
			continue
		}
		switch {
		case strings.ToLower(key) == authMechanismProperties:
			b.WriteString(k + "=" + redactAuthProperties(v))
		case SecretOption(key):
			b.WriteString(k + "=" + redacted)
		default:
			b.WriteString(piece)
		}
	}
	return b.String()
}

func plausibleKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, r := range k {
		if !isAlnum(r) && r != '_' && r != '-' && r != '.' {
			return false
		}
	}
	return true
}

// redactAuthProperties redacts the secret properties of a raw
// authMechanismProperties value ("KEY:value,KEY:value").
func redactAuthProperties(raw string) string {
	v, err := url.QueryUnescape(raw)
	if err != nil {
		return redacted
	}
	var out []string
	for prop := range strings.SplitSeq(v, ",") {
		k, _, _ := strings.Cut(prop, ":")
		switch {
		case publicAuthProperties[k]:
			out = append(out, escapeAuthProperty(prop))
		case plausibleKey(k):
			out = append(out, k+":"+redacted)
		default:
			out = append(out, redacted)
		}
	}
	return strings.Join(out, ",")
}

func escapeAuthProperty(p string) string {
	k, v, _ := strings.Cut(p, ":")
	return url.QueryEscape(k) + ":" + url.QueryEscape(v)
}

var uriInText = regexp.MustCompile(`mongodb(\+srv)?://[^\s"'<>]+`)

// RedactText redacts every connection string inside a message (a driver
// error, say) and leaves the rest of the text as it is.
func RedactText(s string) string {
	return uriInText.ReplaceAllStringFunc(s, Redact)
}

// ConnString is a parsed connection string. Username and Password are
// unescaped; Hosts, Database and the options are kept as written.
type ConnString struct {
	Scheme      string // "mongodb" or "mongodb+srv"
	Username    string
	Password    string
	HasUser     bool
	HasPassword bool
	Hosts       []string
	Database    string // escaped, without the leading slash
	Options     []Option
}

// Option is one connection-string option as written (escaped).
type Option struct{ Key, Value string }

// errUserInfo is the message for user information the driver would misread.
const errUserInfo = "the user name or password contains an unescaped @ : / ? or #: percent-encode them (@ is %40, : is %3A, / is %2F, ? is %3F, # is %23)"

// ParseURI parses a connection string as the driver reads it and checks it
// with the driver's own validation (without the DNS lookups of
// mongodb+srv). It is stricter than the driver where the driver and other
// parsers disagree: the user information must have its reserved characters
// percent-encoded. Errors never contain the password or a secret option.
func ParseURI(s string) (*ConnString, error) {
	c, err := parseURI(s, true)
	if err != nil {
		return nil, fmt.Errorf("connection string %s: %w", Redact(s), err)
	}
	return c, nil
}

// ParseURIUnchecked parses like ParseURI without the driver's validation:
// for a stored connection string whose credentials are kept apart (an
// authMechanism that needs a user is then incomplete on its own).
func ParseURIUnchecked(s string) (*ConnString, error) {
	c, err := parseURI(s, false)
	if err != nil {
		return nil, fmt.Errorf("connection string %s: %w", Redact(s), err)
	}
	return c, nil
}

func parseURI(s string, check bool) (*ConnString, error) {
	if len(s) > MaxURILength {
		return nil, fmt.Errorf("longer than %d bytes", MaxURILength)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("contains a space or a control character: percent-encode it")
		}
	}
	scheme, rest, ok := cutScheme(s)
	if !ok {
		return nil, errors.New("must start with mongodb:// or mongodb+srv://")
	}
	c := &ConnString{Scheme: scheme}
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		info := rest[:at]
		rest = rest[at+1:]
		user, pw, hasPW := strings.Cut(info, ":")
		if strings.ContainsAny(user, "/?#") || strings.ContainsAny(pw, ":/?#") || strings.ContainsRune(rest, '@') {
			return nil, errors.New(errUserInfo)
		}
		var err1, err2 error
		c.Username, err1 = url.PathUnescape(user)
		c.Password, err2 = url.PathUnescape(pw)
		if err1 != nil || err2 != nil {
			return nil, errors.New("the user name or password has an invalid percent-escape (a % must be followed by two hex digits)")
		}
		if c.Username == "" && !hasPW {
			return nil, errors.New("empty user information before @")
		}
		c.HasUser, c.HasPassword = true, hasPW
	}
	hosts := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		if rest[i] == '?' {
			return nil, errors.New("must have a / between the hosts and the options (…host:port/?option=…)")
		}
		hosts, rest = rest[:i], rest[i+1:]
	} else {
		rest = ""
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if err := checkHost(h, scheme); err != nil {
			return nil, err
		}
		c.Hosts = append(c.Hosts, h)
	}
	if scheme == connstring.SchemeMongoDBSRV && len(c.Hosts) != 1 {
		return nil, errors.New("mongodb+srv:// takes exactly one host name")
	}
	db, query, _ := strings.Cut(rest, "?")
	if _, err := url.QueryUnescape(db); err != nil {
		return nil, errors.New("the database name has an invalid percent-escape")
	}
	c.Database = db
	for piece := range strings.FieldsFuncSeq(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, ok := strings.Cut(piece, "=")
		key, err1 := url.QueryUnescape(k)
		_, err2 := url.QueryUnescape(v)
		if !ok || !plausibleKey(key) {
			return nil, errors.New("an option is not of the form name=value")
		}
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("option %s has an invalid percent-escape", key)
		}
		c.Options = append(c.Options, Option{Key: k, Value: v})
	}
	if check {
		if err := c.driverCheck(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func checkHost(h, scheme string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return fmt.Errorf("host %q: unclosed [", h)
		}
		host, port = h[1:end], h[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return fmt.Errorf("host %q: want [address]:port", h)
		}
		port = strings.TrimPrefix(port, ":")
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("host %q: want a host name of 1 to 253 characters", h)
	}
	for _, r := range host {
		if !isAlnum(r) && !strings.ContainsRune(".-_:%", r) {
			return fmt.Errorf("host %q: a host name has only letters, digits, '.', '-' and '_'", h)
		}
	}
	if port != "" || strings.HasSuffix(h, ":") {
		if scheme == connstring.SchemeMongoDBSRV {
			return fmt.Errorf("host %q: mongodb+srv:// takes a host name without a port", h)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("host %q: the port must be a number from 1 to 65535", h)
		}
	}
	return nil
}

// driverCheck runs the driver's parser and validation on the connection
// string; mongodb+srv:// is checked as mongodb:// (no DNS lookup), without
// its SRV-only options. Secret values are scrubbed from the driver's error.
func (c *ConnString) driverCheck() error {
	d := *c
	if d.Scheme == connstring.SchemeMongoDBSRV {
		d.Scheme = connstring.SchemeMongoDB
		d.Options = slices.DeleteFunc(slices.Clone(d.Options), func(o Option) bool {
			k := strings.ToLower(o.Key)
			return k == "srvmaxhosts" || k == "srvservicename"
		})
	}
	cs, err := connstring.Parse(d.String())
	if err == nil {
		err = cs.Validate()
	}
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, v := range c.SecretValues() {
		msg = strings.ReplaceAll(msg, v, redacted)
	}
	return errors.New(RedactText(msg))
}

// String returns the full connection string, credentials included, with the
// user information percent-encoded.
func (c *ConnString) String() string {
	var b strings.Builder
	b.WriteString(c.Scheme + "://")
	if c.HasUser {
		b.WriteString(escapeUserInfo(c.Username))
		if c.HasPassword {
			b.WriteString(":" + escapeUserInfo(c.Password))
		}
		b.WriteByte('@')
	}
	b.WriteString(strings.Join(c.Hosts, ","))
	if c.Database != "" || len(c.Options) > 0 {
		b.WriteString("/" + c.Database)
	}
	for i, o := range c.Options {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(o.Key + "=" + o.Value)
	}
	return b.String()
}

// Redacted returns the connection string with its secrets replaced.
func (c *ConnString) Redacted() string { return Redact(c.String()) }

// WithoutUserInfo returns a copy without user name and password.
func (c *ConnString) WithoutUserInfo() *ConnString {
	d := *c
	d.Username, d.Password, d.HasUser, d.HasPassword = "", "", false, false
	d.Options = slices.Clone(c.Options)
	return &d
}

// SecretValues returns the password and the values of the secret options,
// escaped and unescaped, longest first, for scrubbing them from text.
func (c *ConnString) SecretValues() []string {
	var out []string
	add := func(v string) {
		if len(v) >= 3 && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if c.HasPassword {
		add(c.Password)
		add(escapeUserInfo(c.Password))
	}
	for _, o := range c.Options {
		key, _ := url.QueryUnescape(o.Key)
		if !SecretOption(key) {
			continue
		}
		add(o.Value)
		v, _ := url.QueryUnescape(o.Value)
		add(v)
		if strings.ToLower(key) == authMechanismProperties {
			for prop := range strings.SplitSeq(v, ",") {
				if k, pv, _ := strings.Cut(prop, ":"); !publicAuthProperties[k] {
					add(pv)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// escapeUserInfo percent-encodes everything but the unreserved characters.
func escapeUserInfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
