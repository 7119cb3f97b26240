package controlplane

import (
	"strings"
	"testing"
	"time"
)

// TestDigestNonces: a nonce is good for digestNonceTTL, each nonce count
// once and only upwards, and a tampered nonce never.
func TestDigestNonces(t *testing.T) {
	var d digestNonces
	now := time.Now()
	n := d.issue(now)
	for _, tc := range []struct {
		nc        uint64
		at        time.Duration
		ok, stale bool
	}{
		{1, 0, true, false},
		{1, time.Second, false, false}, // replay
		{3, time.Second, true, false},  // counts may skip
		{2, time.Second, false, false}, // but never go back
		{4, digestNonceTTL + time.Second, false, true},
	} {
		ok, stale := d.check(n, tc.nc, now.Add(tc.at))
		if ok != tc.ok || stale != tc.stale {
			t.Errorf("nc %d at +%s: ok %v stale %v, want %v %v", tc.nc, tc.at, ok, stale, tc.ok, tc.stale)
		}
	}
	tampered := []byte(d.issue(now))
	tampered[3] ^= 1
	if ok, stale := d.check(string(tampered), 1, now); ok || stale {
		t.Errorf("tampered nonce: ok %v stale %v, want refused", ok, stale)
	}
	if ok, _ := d.check("not hex", 1, now); ok {
		t.Error("garbage nonce accepted")
	}
	var other digestNonces // another process: another key
	if ok, _ := other.check(d.issue(now), 1, now); ok {
		t.Error("a nonce of another key accepted")
	}
	c := d.challenge(true)
	if !strings.HasPrefix(c, `Digest realm="livemigrate", nonce="`) || !strings.HasSuffix(c, `, qop="auth", algorithm=MD5, stale=true`) {
		t.Errorf("challenge %q", c)
	}
}

func TestParseDigest(t *testing.T) {
	p, ok := parseDigest(`username="k", realm="livemigrate", nonce="ab", uri="/api/x?a=1,2", response="ff", algorithm="MD5", qop=auth, nc=00000001, cnonce="c\"d"`)
	if !ok || p["uri"] != "/api/x?a=1,2" || p["qop"] != "auth" || p["nc"] != "00000001" || p["cnonce"] != `c"d` || p["algorithm"] != "MD5" {
		t.Errorf("parseDigest: %v %v", p, ok)
	}
	for _, bad := range []string{`username="k`, `=x`, `username="a", username="b"`, `novalue`} {
		if _, ok := parseDigest(bad); ok {
			t.Errorf("parseDigest(%q) accepted", bad)
		}
	}
}

// FuzzParseDigest: any header parses or is refused, never panics, and what
// parses has no empty key.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{
		`username="k", realm="livemigrate", nonce="ab", uri="/", response="ff", algorithm=MD5, qop=auth, nc=00000001, cnonce="c"`,
		`a="\"", b=c`, `x="`, `,,,`, `a=b,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := parseDigest(s)
		if !ok {
			return
		}
		for k := range p {
			if k == "" {
				t.Fatalf("empty key from %q", s)
			}
		}
	})
}
