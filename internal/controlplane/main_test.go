package controlplane

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// TestMain makes the first DNS lookup of the test binary outside any
// testing/synctest bubble: the resolver's state is created on first use,
// and state created inside a bubble panics when used outside it (the
// destination-user loop of a non-bubble test resolves cluster host names).
func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, _ = net.DefaultResolver.LookupHost(ctx, "localhost")
	cancel()
	os.Exit(m.Run())
}
