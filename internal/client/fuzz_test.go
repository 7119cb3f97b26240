package client_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/client"
)

// FuzzParseLinkToken: the agent's link-token parser never panics; a
// refused token gets a "parse link token: …" error that does not echo it;
// an accepted one names an http(s) control plane, an org and a secret.
func FuzzParseLinkToken(f *testing.F) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		b64(`{"url":"http://cp:8080","orgId":"o1","secret":"s"}`),
		b64(`{"url":"https://cp.example.com","orgId":"o1","secret":"s"}`) + "\n",
		"", "!!", b64(`{"url":"x"}`), b64(`{"url":"file:///etc/passwd","orgId":"o","secret":"s"}`),
		b64(`{"url":"http://user:pw@cp","orgId":"o","secret":"s"}`), b64(`{"url":"http://%zz","orgId":"o","secret":"s"}`),
		b64(`[]`), b64(`{"url":1}`), strings.Repeat("QUFB", 1100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := client.ParseLinkToken(tok)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "parse link token: ") || len(msg) > 140 {
				t.Fatalf("ParseLinkToken(%q) error %q", tok, msg)
			}
			if trimmed := strings.TrimSpace(tok); len(trimmed) >= 8 && strings.Contains(msg, trimmed) {
				t.Fatalf("ParseLinkToken error %q echoes the token", msg)
			}
			return
		}
		u, perr := url.Parse(c.URL)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || c.OrgID == "" || c.Secret == "" {
			t.Fatalf("ParseLinkToken(%q) accepted %+v", tok, c)
		}
	})
}
