package mdb

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://alice:s3cret@db:27017/?tls=true", "mongodb://alice:xxxxx@db:27017/?tls=true"},
		{"mongodb://db:27017/", "mongodb://db:27017/"},
		{"mongodb+srv://bob:p%40ss@cluster.example.net/", "mongodb+srv://bob:xxxxx@cluster.example.net/"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactText(t *testing.T) {
	msg := `server selection error: dial "mongodb://alice:s3cret@db:27017/" refused; auth error: sasl conversation error`
	got := RedactText(msg)
	if strings.Contains(got, "s3cret") {
		t.Fatalf("password left in %q", got)
	}
	if !strings.Contains(got, "server selection error") || !strings.Contains(got, "sasl conversation error") {
		t.Fatalf("message text lost: %q", got)
	}
	plain := "connection refused"
	if got := RedactText(plain); got != plain {
		t.Fatalf("RedactText(%q) = %q", plain, got)
	}
}
