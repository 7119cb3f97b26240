package controlplane

import (
	"context"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // HTTP Digest (RFC 7616) as the Atlas SDK and CLI speak it is MD5
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTP Digest authentication of API keys (RFC 7616), as MongoDB's Atlas Go
// SDK and the atlas CLI speak it (github.com/mongodb-forks/digest): they
// send each request once unauthenticated, read the first WWW-Authenticate
// header of the 401, and repeat the request with algorithm=MD5, qop=auth,
// nc=00000001 and a fresh cnonce.
//
// Nonces are stateless to issue: hex(issued-at ms || 12 random bytes ||
// HMAC-SHA256(per-process key, both)[:16]), valid for digestNonceTTL. A
// nonce's highest nonce count is remembered until it expires, and a request
// whose count is not higher is refused, so a captured Authorization header
// cannot be replayed. An expired nonce is answered with stale=true.
const (
	digestRealm    = "livemigrate"
	digestNonceTTL = 5 * time.Minute
	// digestMaxNonces bounds the replay memory; past it, new nonces are
	// refused as stale until old ones expire.
	digestMaxNonces = 200_000
)

type digestNonces struct {
	once sync.Once
	key  []byte
	mu   sync.Mutex
	seen map[string]digestSeen // nonce → highest nonce count and expiry
}

type digestSeen struct {
	nc      uint64
	expires time.Time
}

func (d *digestNonces) init() {
	d.once.Do(func() {
		d.key = make([]byte, 32)
		rand.Read(d.key)
		d.seen = map[string]digestSeen{}
	})
}

func (d *digestNonces) mac(b []byte) []byte {
	m := hmac.New(sha256.New, d.key)
	m.Write(b)
	return m.Sum(nil)[:16]
}

// issue returns a new nonce.
func (d *digestNonces) issue(now time.Time) string {
	d.init()
	b := make([]byte, 20, 36)
	binary.BigEndian.PutUint64(b, uint64(now.UnixMilli()))
	rand.Read(b[8:20])
	return hex.EncodeToString(append(b, d.mac(b)...))
}

// check verifies nonce and records nc for it. stale reports an expired (or
// otherwise no longer usable) nonce the client may retry with a new one.
func (d *digestNonces) check(nonce string, nc uint64, now time.Time) (ok, stale bool) {
	d.init()
	b, err := hex.DecodeString(nonce)
	if err != nil || len(b) != 36 || !hmac.Equal(d.mac(b[:20]), b[20:]) {
		return false, false
	}
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(b)))
	expires := issued.Add(digestNonceTTL)
	if now.After(expires) || issued.After(now.Add(time.Minute)) {
		return false, true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	prev, known := d.seen[nonce]
	if known && nc <= prev.nc {
		return false, false // replay
	}
	if !known && len(d.seen) >= digestMaxNonces {
		for k, v := range d.seen {
			if now.After(v.expires) {
				delete(d.seen, k)
			}
		}
		if len(d.seen) >= digestMaxNonces {
			return false, true
		}
	}
	d.seen[nonce] = digestSeen{nc: nc, expires: expires}
	return true, false
}

// challenge is the WWW-Authenticate value offering Digest. Parameters are
// separated by ", " and limited to the ones the SDK's parser knows.
func (d *digestNonces) challenge(stale bool) string {
	c := fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5`, digestRealm, d.issue(time.Now()))
	if stale {
		c += ", stale=true"
	}
	return c
}

// parseDigest parses the parameters of an Authorization: Digest header
// (quoted strings may hold commas and escaped quotes).
func parseDigest(s string) (map[string]string, bool) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var sb strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				sb.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			val, s = sb.String(), s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		if _, dup := out[key]; dup {
			return nil, false
		}
		out[key] = val
	}
}

// digestError is an authentication failure of a Digest request; stale asks
// the client to retry with the fresh nonce of the challenge.
type digestError struct {
	*apiError
	stale bool
}

func (e *digestError) Unwrap() error { return e.apiError }

func digestRefused(stale bool, format string, args ...any) error {
	return &digestError{apiError: errorf(http.StatusUnauthorized, "UNAUTHORIZED", format, args...), stale: stale}
}

// checkDigest authenticates an Authorization: Digest request. Only API keys
// created since digest support have the sealed HA1 it needs; older keys
// keep working with Basic.
func (s *Server) checkDigest(ctx context.Context, r *http.Request, params string) (*principal, error) {
	p, ok := parseDigest(params)
	if !ok {
		return nil, digestRefused(false, "malformed Digest Authorization header")
	}
	if alg := p["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return nil, digestRefused(false, "Digest algorithm %q is not offered: use MD5", alg)
	}
	if p["qop"] != "auth" {
		return nil, digestRefused(false, "Digest qop must be auth")
	}
	if p["realm"] != digestRealm {
		return nil, digestRefused(false, "Digest realm must be %q", digestRealm)
	}
	if p["uri"] != r.URL.RequestURI() {
		return nil, digestRefused(false, "Digest uri does not match the request URI")
	}
	nc, err := strconv.ParseUint(p["nc"], 16, 64)
	if err != nil || len(p["nc"]) != 8 || nc == 0 || p["cnonce"] == "" {
		return nil, digestRefused(false, "Digest needs nc (8 hex digits, not 0) and cnonce")
	}
	keys, err := s.admitCredential(r, p["username"])
	if err != nil {
		return nil, err
	}
	c, err := s.store.Credential(ctx, p["username"])
	if errors.Is(err, errNotFound) {
		c.digestHA1 = nil
	} else if err != nil {
		return nil, err
	}
	ha1 := "00000000000000000000000000000000" // unknown user: the same work, never a match
	known := false
	if err == nil && c.kind == "apikey" && c.digestHA1 != nil {
		plain, err := s.sealer.open(c.digestHA1)
		if err != nil {
			return nil, err
		}
		ha1, known = string(plain), true
	}
	ha2 := md5hex(r.Method + ":" + p["uri"])
	want := md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) != 1 || !known {
		if err == nil && c.kind == "apikey" && c.digestHA1 == nil && !c.serviceAccount {
			return nil, digestRefused(false, "this API key was created before Digest support: use Basic, or create a new API key")
		}
		return nil, digestRefused(false, "Digest credentials are wrong")
	}
	s.throttle.succeeded(keys)
	if ok, stale := s.digest.check(p["nonce"], nc, time.Now()); !ok {
		if stale {
			return nil, digestRefused(true, "Digest nonce expired: retry with the new nonce")
		}
		return nil, digestRefused(false, "Digest nonce unknown or already used with this nonce count")
	}
	return s.loadPrincipal(ctx, c.id)
}

// digestHA1 is what is sealed for an API key at creation: MD5(user:realm:secret).
func digestHA1(user, secret string) string {
	return md5hex(user + ":" + digestRealm + ":" + secret)
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s)) //nolint:gosec // RFC 7616 MD5
	return hex.EncodeToString(h[:])
}
