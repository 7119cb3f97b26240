package client_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/livemigrate/livemigrate/internal/client"
)

func TestParseLinkToken(t *testing.T) {
	tok := base64.RawURLEncoding.EncodeToString([]byte(`{"url":"http://cp:8080","orgId":"o1","secret":"s"}`))
	c, err := client.ParseLinkToken(tok)
	if err != nil || c.URL != "http://cp:8080" || c.OrgID != "o1" || c.Secret != "s" {
		t.Fatalf("ParseLinkToken = %+v, %v", c, err)
	}
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString([]byte(`{"url":"x"}`))} {
		if _, err := client.ParseLinkToken(bad); err == nil {
			t.Errorf("ParseLinkToken(%q) succeeded", bad)
		}
	}
}

func TestAPIError(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/atlas/v2/orgs/x" {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":404,"errorCode":"RESOURCE_NOT_FOUND","detail":"organization x not found","reason":"Not Found"}`))
			return
		}
		w.WriteHeader(502)
		w.Write([]byte("bad gateway"))
	}))
	defer hs.Close()
	c := client.New(hs.URL, client.BasicAuth("a", "b"))
	_, err := c.Org(context.Background(), "x")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.ErrorCode != "RESOURCE_NOT_FOUND" || !client.IsNotFound(err) {
		t.Fatalf("err = %#v", err)
	}
	_, err = c.Orgs(context.Background())
	if !errors.As(err, &ae) || ae.StatusCode != 502 || ae.ErrorCode != "HTTP_ERROR" {
		t.Fatalf("non-envelope error = %#v", err)
	}
}
