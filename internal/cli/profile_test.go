package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConfigRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.json")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	p := cfg.Profiles["default"]
	for k, v := range map[string]string{KeyBaseURL: "http://cp:8080", KeyPublicAPIKey: "pub", KeyPrivateAPIKey: "priv", KeyOrgID: "o", KeyProjectID: "g"} {
		if err := p.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Profiles["default"] = p
	if err := cfg.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := p.Set("colour", "x"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Set(colour) = %v, want ErrUnknownKey", err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil {
		t.Error("LoadConfig of a broken file: no error")
	}
}

func TestResolve(t *testing.T) {
	cfg := Config{Profiles: map[string]Profile{
		"default": {PublicAPIKey: "pub", PrivateAPIKey: "priv", ProjectID: "g1"},
		"prod":    {BaseURL: "https://cp", PublicAPIKey: "p2", PrivateAPIKey: "k2"},
	}}
	env := map[string]string{EnvProjectID: "g-env", EnvPrivateAPIKey: "priv-env"}
	r, err := Resolve(cfg, ProfileName("", func(string) string { return "" }), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{BaseURL: DefaultBaseURL, PublicAPIKey: "pub", PrivateAPIKey: "priv-env", ProjectID: "g-env"}
	if diff := cmp.Diff(want, r.Profile); diff != "" {
		t.Errorf("resolved default (-want +got):\n%s", diff)
	}
	sources := map[string]string{}
	for _, s := range r.Settings {
		sources[s.Key] = s.Source
		if IsSecretKey(s.Key) && s.Display() != "(set, hidden)" {
			t.Errorf("secret %s displays as %q", s.Key, s.Display())
		}
	}
	wantSources := map[string]string{KeyBaseURL: "default", KeyPublicAPIKey: "profile default", KeyPrivateAPIKey: "env $" + EnvPrivateAPIKey, KeyOrgID: "", KeyProjectID: "env $" + EnvProjectID}
	if diff := cmp.Diff(wantSources, sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if got := ProfileName("", func(k string) string { return map[string]string{EnvProfile: "prod"}[k] }); got != "prod" {
		t.Errorf("ProfileName from $%s = %q", EnvProfile, got)
	}
	if _, err := Resolve(cfg, "staging", func(string) string { return "" }); !errors.Is(err, ErrNoProfile) {
		t.Errorf("Resolve(staging) = %v, want ErrNoProfile", err)
	}
}
