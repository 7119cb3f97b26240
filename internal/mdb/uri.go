package mdb

import (
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// URI is a MongoDB connection string. Its String and LogValue redact the
// password, so it can be logged and put in errors safely.
type URI string

// String returns the connection string with the password replaced by "xxxxx".
func (u URI) String() string { return Redact(string(u)) }

// LogValue implements slog.LogValuer.
func (u URI) LogValue() slog.Value { return slog.StringValue(u.String()) }

// Raw returns the connection string with its credentials, for the driver only.
func (u URI) Raw() string { return string(u) }

// Redact removes the password from a connection string. A string that does
// not parse is reduced to its scheme so nothing secret leaks.
func Redact(s string) string {
	p, err := url.Parse(s)
	if err != nil {
		if i := strings.Index(s, "://"); i >= 0 {
			return s[:i+3] + "<unparsable connection string>"
		}
		return "<unparsable connection string>"
	}
	if p.User != nil {
		if _, ok := p.User.Password(); ok {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
		}
	}
	return p.String()
}

var uriInText = regexp.MustCompile(`mongodb(\+srv)?://[^\s"'<>]+`)

// RedactText redacts every connection string inside a message (a driver
// error, say) and leaves the rest of the text as it is.
func RedactText(s string) string {
	return uriInText.ReplaceAllStringFunc(s, Redact)
}

// Validate checks the shape of a connection string before the driver sees it.
func (u URI) Validate() error {
	s := string(u)
	if !strings.HasPrefix(s, "mongodb://") && !strings.HasPrefix(s, "mongodb+srv://") {
		return fmt.Errorf("connection string %q must start with mongodb:// or mongodb+srv://", u.String())
	}
	if _, err := url.Parse(s); err != nil {
		return fmt.Errorf("connection string %q does not parse: check for unescaped characters in the user name or password (percent-encode @ : / ? # [ ])", u.String())
	}
	return nil
}
