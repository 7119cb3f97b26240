package controlplane

import (
	"container/list"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// AuthLimits are the free credential attempts before the exponential lock
// (see throttler). Zero fields take the defaults.
type AuthLimits struct {
	PerAccountAddress int // one account from one address; default 5
	PerAccount        int // one account from all addresses (distributed guessing); default 50
	PerAddress        int // one address over all accounts (password spraying); default 20
}

func (l AuthLimits) withDefaults() AuthLimits {
	def := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	def(&l.PerAccountAddress, 5)
	def(&l.PerAccount, 50)
	def(&l.PerAddress, 20)
	return l
}

// Failure limits of credential checks. Every attempt counts at admission
// (so parallel guesses cannot all slip in before the first one fails); a
// success gives the attempt back. Past the free attempts of a key
// (AuthLimits), each admitted attempt locks the key for twice as long as
// the previous one (throttleBase, 2×, 4×, … up to throttleMax); a locked
// key is answered 429 with Retry-After before any secret is hashed.
const (
	throttleBase = time.Second
	throttleMax  = 15 * time.Minute
	// throttleForget: a key with no attempt for this long is forgotten.
	throttleForget = 30 * time.Minute
	// throttleCap bounds the memory: beyond it the least recently used
	// key is dropped (an attacker flooding addresses forgets their own
	// counters first, never the lock of an account under attack for
	// long: account keys are touched by every attempt on them).
	throttleCap = 100_000
)

// throttler counts credential attempts by key. The zero value is ready.
type throttler struct {
	mu  sync.Mutex
	m   map[string]*list.Element
	lru list.List // of *throttleEntry, most recent first
	now func() time.Time
}

type throttleEntry struct {
	key   string
	n     int // attempts not given back
	until time.Time
	last  time.Time
}

// throttleKey is one limit an attempt is counted against.
type throttleKey struct {
	key  string
	free int
}

// credentialKeys are the limits of an attempt on account name from addr.
// Accounts share one namespace over all schemes (principal names are
// unique), so switching schemes buys no attempts.
func credentialKeys(l AuthLimits, name, addr string) []throttleKey {
	return []throttleKey{
		{"pair\x00" + name + "\x00" + addr, l.PerAccountAddress},
		{"acct\x00" + name, l.PerAccount},
		{"addr\x00" + addr, l.PerAddress},
	}
}

func (t *throttler) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// entry returns the entry of key, creating it, and expires old ones. Call with mu held.
func (t *throttler) entry(key string, now time.Time) *throttleEntry {
	if t.m == nil {
		t.m = map[string]*list.Element{}
	}
	for el := t.lru.Back(); el != nil; el = t.lru.Back() {
		e := el.Value.(*throttleEntry)
		stale := now.Sub(e.last) >= throttleForget && !now.Before(e.until)
		if !stale && len(t.m) < throttleCap {
			break
		}
		t.lru.Remove(el)
		delete(t.m, e.key)
	}
	if el, ok := t.m[key]; ok {
		t.lru.MoveToFront(el)
		return el.Value.(*throttleEntry)
	}
	e := &throttleEntry{key: key, last: now}
	t.m[key] = t.lru.PushFront(e)
	return e
}

// admit counts an attempt against keys, or refuses it with the time to wait
// when one of them is locked (then nothing is counted).
func (t *throttler) admit(keys []throttleKey) (ok bool, retry time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	entries := make([]*throttleEntry, len(keys))
	for i, k := range keys {
		e := t.entry(k.key, now)
		entries[i] = e
		if d := e.until.Sub(now); d > retry {
			retry = d
		}
	}
	if retry > 0 {
		return false, retry
	}
	for i, e := range entries {
		e.n++
		e.last = now
		if over := e.n - keys[i].free; over > 0 {
			e.until = now.Add(lockFor(over))
		}
	}
	return true, 0
}

// succeeded gives an attempt back: the account's counters start over, the
// address keeps the failures it made on other accounts.
func (t *throttler) succeeded(keys []throttleKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, k := range keys {
		el, ok := t.m[k.key]
		if !ok {
			continue
		}
		e := el.Value.(*throttleEntry)
		if i < len(keys)-1 {
			e.n, e.until = 0, time.Time{}
		} else if e.n > 0 {
			e.n--
		}
	}
}

// size is the number of keys held (for tests and metrics).
func (t *throttler) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// lockFor is the lock after the over-th attempt past the free ones.
func lockFor(over int) time.Duration {
	if over > 20 {
		return throttleMax
	}
	d := throttleBase << (over - 1)
	return min(d, throttleMax)
}

// errThrottled is the 429 of a locked credential key.
func errThrottled(retry time.Duration) *throttledError {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &throttledError{
		apiError:   errorf(http.StatusTooManyRequests, "RATE_LIMITED", "too many failed authentication attempts: retry in %d s", secs).withParams(secs),
		retryAfter: secs,
	}
}

// throttledError carries the Retry-After of a 429.
type throttledError struct {
	*apiError
	retryAfter int
}

func (e *throttledError) Unwrap() error { return e.apiError }

// setRetryAfter sets the Retry-After header of a throttled answer.
func setRetryAfter(w http.ResponseWriter, err error) {
	var te *throttledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(te.retryAfter))
	}
}

// admitCredential counts an attempt on account name by the request's
// caller; a throttled attempt is refused before any hashing.
func (s *Server) admitCredential(r *http.Request, name string) ([]throttleKey, error) {
	addr := r.RemoteAddr
	if a, ok := s.remoteAddr(r); ok {
		addr = a.String()
	}
	keys := credentialKeys(s.opts.AuthLimits.withDefaults(), name, addr)
	if ok, retry := s.throttle.admit(keys); !ok {
		return nil, errThrottled(retry)
	}
	return keys, nil
}

// dummyPasswordHash is checked against for unknown names, so that they cost
// the same PBKDF2 work as a known user's wrong password.
var dummyPasswordHash = sync.OnceValue(func() string { return hashPassword(randomToken(18)) })
