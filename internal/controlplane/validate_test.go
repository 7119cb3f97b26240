package controlplane

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// TestResealStored: a store written before credentials were kept apart
// (destination password inside the sealed URI, a prefix-"redacted" display
// form that leaks a password with '/', a webhook URL with user:password in
// clear) is rewritten at the next start, and the agent still gets working
// credentials.
func TestResealStored(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cp.db")
	key := bytes.Repeat([]byte{9}, KeySize)
	s, err := New(ctx, Options{DataPath: path, Key: key, ExternalURL: "http://cp.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Bootstrap(ctx, BootstrapOptions{Username: "root", Password: "root-password"}); err != nil {
		t.Fatal(err)
	}
	var groupID string
	if err := s.store.db.QueryRowContext(ctx, `SELECT id FROM projects LIMIT 1`).Scan(&groupID); err != nil {
		t.Fatal(err)
	}
	old := "mongodb://alice:pa%2Fss@db1:27017/?replicaSet=rs"
	if _, err := s.store.db.ExecContext(ctx, `INSERT INTO clusters (id, group_id, name, conn_redacted, conn_enc, username, password_enc, created_at) VALUES ('c1', ?, 'old', ?, ?, '', NULL, 0)`,
		groupID, old, s.sealer.seal([]byte(old))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.db.ExecContext(ctx, `UPDATE projects SET webhook_url = 'https://u:HookPw@hooks.example.com/x', webhook_url_enc = NULL WHERE id = ?`, groupID); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = New(ctx, Options{DataPath: path, Key: key, ExternalURL: "http://cp.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var display, user, hook string
	if err := s.store.db.QueryRowContext(ctx, `SELECT conn_redacted, username FROM clusters WHERE id = 'c1'`).Scan(&display, &user); err != nil {
		t.Fatal(err)
	}
	if display != "mongodb://db1:27017/?replicaSet=rs" || user != "alice" {
		t.Errorf("cluster shown as %q user %q", display, user)
	}
	d, err := s.destination(ctx, s.store, groupID, "old")
	if err != nil {
		t.Fatal(err)
	}
	if d.ConnectionString != "mongodb://db1:27017/?replicaSet=rs" || d.Username != "alice" || d.Password != "pa/ss" {
		t.Errorf("agent gets %+v", d)
	}
	if err := s.store.db.QueryRowContext(ctx, `SELECT webhook_url FROM projects WHERE id = ?`, groupID).Scan(&hook); err != nil {
		t.Fatal(err)
	}
	if hook != "https://hooks.example.com/x" {
		t.Errorf("webhook shown as %q", hook)
	}
	var files []byte
	for _, p := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(p)
		files = append(files, b...)
	}
	for _, secret := range []string{"HookPw", "pa%2Fss", "alice:"} {
		if bytes.Contains(files, []byte(secret)) {
			t.Errorf("the store files still have %q in clear", secret)
		}
	}
}
