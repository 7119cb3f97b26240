package controlplane

import (
	"fmt"
	"testing"
	"time"
)

// TestThrottlerLocks: past the free attempts each admitted attempt locks
// the key twice as long (1 s, 2 s, 4 s, …, at most throttleMax); a locked
// key counts nothing; a success starts the account over but gives the
// address only its one attempt back.
func TestThrottlerLocks(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := &throttler{now: func() time.Time { return now }}
	keys := credentialKeys(AuthLimits{}.withDefaults(), "alice", "192.0.2.1")
	for i := range 5 {
		if ok, _ := th.admit(keys); !ok {
			t.Fatalf("free attempt %d refused", i+1)
		}
	}
	for want := time.Second; want <= 8*time.Second; want *= 2 {
		if ok, _ := th.admit(keys); !ok {
			t.Fatalf("attempt after the lock of %v refused", want/2)
		}
		ok, retry := th.admit(keys)
		if ok || retry != want {
			t.Fatalf("during the lock: ok=%v retry=%v, want refused for %v", ok, retry, want)
		}
		now = now.Add(want)
	}
	if got := lockFor(40); got != throttleMax {
		t.Errorf("lockFor(40) = %v, want %v", got, throttleMax)
	}
	th.succeeded(keys)
	for i := range 5 {
		if ok, _ := th.admit(keys); !ok {
			t.Fatalf("after a success, free attempt %d refused", i+1)
		}
	}
	// The address still has its other failures: 5+4 admitted, 1 given back.
	addr := th.m[keys[2].key].Value.(*throttleEntry)
	if addr.n != 13 {
		t.Errorf("address attempts after a success: %d, want 13", addr.n)
	}
}

// TestThrottlerMemory: the keys held stay under throttleCap however many
// addresses an attacker uses, and are forgotten after throttleForget.
func TestThrottlerMemory(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := &throttler{now: func() time.Time { return now }}
	l := AuthLimits{}.withDefaults()
	for i := range throttleCap {
		th.admit(credentialKeys(l, "alice", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)))
	}
	if n := th.size(); n > throttleCap {
		t.Errorf("%d keys held, want at most %d", n, throttleCap)
	}
	// alice's account key is touched by every attempt: it is never the
	// least recently used one, so it survives the flood, locked.
	if ok, _ := th.admit(credentialKeys(l, "alice", "192.0.2.9")); ok {
		t.Error("account lock lost in the flood of addresses")
	}
	now = now.Add(throttleForget + throttleMax)
	th.admit(credentialKeys(l, "bob", "192.0.2.1"))
	if n := th.size(); n != 3 {
		t.Errorf("%d keys held after %v without attempts, want 3 (the new ones)", n, throttleForget+throttleMax)
	}
}
