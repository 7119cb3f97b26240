package controlplane

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
)

// KeySize is the length of the secrets key: AES-256.
const KeySize = 32

// sealer encrypts secrets at rest with AES-256-GCM. Sealed values are
// version byte 1 || 12-byte nonce || ciphertext+tag.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets key: want %d bytes, have %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte{1}, nonce...)
	return s.aead.Seal(out, nonce, plain, nil)
}

func (s *sealer) open(sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != 1 {
		return nil, errors.New("open secret: unknown format")
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], nil)
	if err != nil {
		return nil, fmt.Errorf("open secret (wrong key file?): %w", err)
	}
	return plain, nil
}

// LoadKey reads the secrets key: from the environment value env when it is
// not empty, else from the file at path, creating the file with a new random
// key (mode 0600) when it does not exist. Keys are 32 bytes, stored as
// base64 (standard or URL) or hex text, or raw.
func LoadKey(path, env string) ([]byte, error) {
	if env != "" {
		return decodeKey([]byte(env))
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, KeySize)
		rand.Read(key)
		text := base64.StdEncoding.EncodeToString(key) + "\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("write new key file %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	key, err := decodeKey(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

func decodeKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.URLEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("want a %d-byte key as base64 or hex", KeySize)
}

// randomToken returns n random bytes as base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newID returns an ObjectId-shaped 24-hex identifier: 4 bytes of time, 8 random.
func newID(now time.Time) string {
	b := make([]byte, 12)
	t := uint32(now.Unix())
	b[0], b[1], b[2], b[3] = byte(t>>24), byte(t>>16), byte(t>>8), byte(t)
	rand.Read(b[4:])
	return hex.EncodeToString(b)
}

// tokenHash hashes a high-entropy secret (API private key, agent secret,
// link-token secret, session token) for storage and lookup.
func tokenHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Password hashing: PBKDF2-HMAC-SHA256, stored as "pbkdf2-sha256$iter$salt$hash".
const pbkdf2Iterations = 100_000

// hashGate caps the PBKDF2 computations running at once in the process,
// whatever asks for them (logins, Basic with a user, unknown names, user
// creation): a burst of sign-ins from any number of addresses then takes
// at most that many CPUs, and everything else (API keys, agents, cached
// credentials, the web UI) keeps its latency. Waiters queue in order.
var hashGate atomic.Pointer[chan struct{}]

func init() { setHashConcurrency(0) }

// setHashConcurrency sets the cap: n > 0, or 0 for half the CPUs (at least
// 1), or n < 0 for none.
func setHashConcurrency(n int) {
	if n < 0 {
		hashGate.Store(nil)
		return
	}
	if n == 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	c := make(chan struct{}, n)
	hashGate.Store(&c)
}

// pbkdf2Key is pbkdf2.Key inside the cap.
func pbkdf2Key(password string, salt []byte, iter, n int) ([]byte, error) {
	if g := hashGate.Load(); g != nil {
		*g <- struct{}{}
		defer func() { <-*g }()
	}
	return pbkdf2.Key(sha256.New, password, salt, iter, n)
}

func hashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, _ := pbkdf2Key(password, salt, pbkdf2Iterations, 32)
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iterations, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func checkPassword(stored, password string) bool {
	var iter int
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	if _, err := fmt.Sscanf(parts[1], "%d", &iter); err != nil || iter < 1 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[2])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2Key(password, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// hmacHex signs body with secret (webhook signatures).
func hmacHex(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
