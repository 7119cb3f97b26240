package controlplane

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClampSeconds: a client's waitSeconds never overflows into a negative
// or tiny duration.
func TestClampSeconds(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want time.Duration
	}{
		{0, 0}, {-5, 0}, {3, 3 * time.Second}, {30, 30 * time.Second}, {31, 30 * time.Second},
		{9223372037, 30 * time.Second}, {math.MaxInt64, 30 * time.Second},
	} {
		if got := clampSeconds(tc.n, 30*time.Second); got != tc.want {
			t.Errorf("clampSeconds(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

// TestWebhookDialRefusesInternal: the default webhook client refuses to
// connect to an internal address even when the URL got past registration
// (a name re-pointed to 127.0.0.1 after it was checked), and follows no
// redirect.
func TestWebhookDialRefusesInternal(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer srv.Close()
	resp, err := newWebhookClient(false).Post(srv.URL, "application/json", nil)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, errPrivateTarget) {
		t.Fatalf("post to loopback: %v, want errPrivateTarget", err)
	}
	if hit {
		t.Fatal("the request reached the loopback server")
	}
	resp, err = newWebhookClient(true).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatalf("allowed private: %v", err)
	}
	resp.Body.Close()
	redir := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redir.Close()
	resp, err = newWebhookClient(true).Post(redir.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("redirect followed: %d", resp.StatusCode)
	}
}
