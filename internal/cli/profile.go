package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Environment variables read by the Admin API commands. Each overrides the
// profile's value of the same key.
const (
	EnvConfig         = "LIVEMIGRATE_CONFIG"
	EnvProfile        = "LIVEMIGRATE_PROFILE"
	EnvBaseURL        = "LIVEMIGRATE_BASE_URL"
	EnvPublicAPIKey   = "LIVEMIGRATE_PUBLIC_API_KEY"
	EnvPrivateAPIKey  = "LIVEMIGRATE_PRIVATE_API_KEY"
	EnvOrgID          = "LIVEMIGRATE_ORG_ID"
	EnvProjectID      = "LIVEMIGRATE_PROJECT_ID"
	EnvSourcePassword = "LIVEMIGRATE_SOURCE_PASSWORD"
)

// The atlas CLI's environment variables, accepted too (ours win when both
// are set): the API key pair, the base URL, the org and project.
const (
	AtlasEnvPublicAPIKey  = "MONGODB_ATLAS_PUBLIC_API_KEY"
	AtlasEnvPrivateAPIKey = "MONGODB_ATLAS_PRIVATE_API_KEY"
	AtlasEnvBaseURL       = "MONGODB_ATLAS_OPS_MANAGER_URL"
	AtlasEnvOrgID         = "MONGODB_ATLAS_ORG_ID"
	AtlasEnvProjectID     = "MONGODB_ATLAS_PROJECT_ID"
)

// DefaultProfile is the profile used when none is named.
const DefaultProfile = "default"

// DefaultBaseURL is the control plane address when neither the environment
// nor the profile sets one: `livemigrate server`'s default listen address.
const DefaultBaseURL = "http://127.0.0.1:8080"

// Profile keys, as written by `livemigrate config set <key> <value>`.
const (
	KeyBaseURL       = "base_url"
	KeyPublicAPIKey  = "public_api_key"
	KeyPrivateAPIKey = "private_api_key"
	KeyOrgID         = "org_id"
	KeyProjectID     = "project_id"
)

// profileKeys lists every key in display order with its environment
// variable and the atlas CLI's.
var profileKeys = []struct{ key, env, atlasEnv string }{
	{KeyBaseURL, EnvBaseURL, AtlasEnvBaseURL},
	{KeyPublicAPIKey, EnvPublicAPIKey, AtlasEnvPublicAPIKey},
	{KeyPrivateAPIKey, EnvPrivateAPIKey, AtlasEnvPrivateAPIKey},
	{KeyOrgID, EnvOrgID, AtlasEnvOrgID},
	{KeyProjectID, EnvProjectID, AtlasEnvProjectID},
}

// Keys returns the profile keys in display order.
func Keys() []string {
	out := make([]string, len(profileKeys))
	for i, k := range profileKeys {
		out[i] = k.key
	}
	return out
}

// IsSecretKey reports whether the key's value must never be printed.
func IsSecretKey(key string) bool { return key == KeyPrivateAPIKey }

// ErrUnknownKey is returned for a key that is not a profile key.
var ErrUnknownKey = errors.New("unknown profile key")

// Profile is one named set of control plane address and credentials. The
// API key may also be a user's username (public) and password (private).
type Profile struct {
	BaseURL       string `json:"base_url,omitempty"`
	PublicAPIKey  string `json:"public_api_key,omitempty"`
	PrivateAPIKey string `json:"private_api_key,omitempty"`
	OrgID         string `json:"org_id,omitempty"`
	ProjectID     string `json:"project_id,omitempty"`
}

func (p *Profile) field(key string) (*string, error) {
	switch key {
	case KeyBaseURL:
		return &p.BaseURL, nil
	case KeyPublicAPIKey:
		return &p.PublicAPIKey, nil
	case KeyPrivateAPIKey:
		return &p.PrivateAPIKey, nil
	case KeyOrgID:
		return &p.OrgID, nil
	case KeyProjectID:
		return &p.ProjectID, nil
	default:
		return nil, fmt.Errorf("%w %q: want one of %v", ErrUnknownKey, key, Keys())
	}
}

// Get returns the value of key.
func (p Profile) Get(key string) (string, error) {
	f, err := p.field(key)
	if err != nil {
		return "", err
	}
	return *f, nil
}

// Set sets key to value (an empty value unsets it).
func (p *Profile) Set(key, value string) error {
	f, err := p.field(key)
	if err != nil {
		return err
	}
	*f = value
	return nil
}

// Config is the CLI's config file: named profiles.
type Config struct {
	Profiles map[string]Profile `json:"profiles"`
}

// ConfigPath returns the config file's path: $LIVEMIGRATE_CONFIG, else
// <user config dir>/livemigrate/config.json (e.g. ~/.config/livemigrate/config.json).
func ConfigPath(getenv func(string) string) (string, error) {
	if p := getenv(EnvConfig); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory (set $%s): %w", EnvConfig, err)
	}
	return filepath.Join(dir, "livemigrate", "config.json"), nil
}

// LoadConfig reads the config file at path; a missing file is an empty config.
func LoadConfig(path string) (Config, error) {
	cfg := Config{Profiles: map[string]Profile{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read config %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("read config %s: %w (fix or remove the file)", path, err)
	}
	if cfg.Profiles == nil {
		cfg.Profiles = map[string]Profile{}
	}
	return cfg, nil
}

// Save writes the config to path atomically, readable by the owner only
// (it holds private keys).
func (c Config) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write config %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write config %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	return nil
}

// Names returns the profile names, sorted.
func (c Config) Names() []string {
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ProfileName returns the profile to use: flag, else $LIVEMIGRATE_PROFILE,
// else "default".
func ProfileName(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	if n := getenv(EnvProfile); n != "" {
		return n
	}
	return DefaultProfile
}

// ErrNoProfile is returned when a profile named explicitly does not exist.
var ErrNoProfile = errors.New("profile not found")

// Setting is one resolved profile value and where it came from.
type Setting struct {
	Key, Value string
	// Source is "env $NAME", "profile <name>", "default" or "" (unset).
	Source string
}

// Resolved is the effective profile: the file's profile with the
// environment's overrides.
type Resolved struct {
	Name     string
	Profile  Profile
	Settings []Setting
}

// Resolve returns the effective profile name from cfg with environment
// overrides. A profile named explicitly (not "default") must exist.
func Resolve(cfg Config, name string, getenv func(string) string) (Resolved, error) {
	p, ok := cfg.Profiles[name]
	if !ok && name != DefaultProfile {
		return Resolved{}, fmt.Errorf("%w: %q (have %v; create it with 'livemigrate config set --profile %s base_url <url>')", ErrNoProfile, name, cfg.Names(), name)
	}
	r := Resolved{Name: name}
	for _, k := range profileKeys {
		s := Setting{Key: k.key}
		v, _ := p.Get(k.key)
		if v != "" {
			s.Value, s.Source = v, "profile "+name
		}
		if ev := getenv(k.atlasEnv); ev != "" {
			s.Value, s.Source = ev, "env $"+k.atlasEnv
		}
		if ev := getenv(k.env); ev != "" {
			s.Value, s.Source = ev, "env $"+k.env
		}
		if s.Value == "" && k.key == KeyBaseURL {
			s.Value, s.Source = DefaultBaseURL, "default"
		}
		_ = r.Profile.Set(k.key, s.Value)
		r.Settings = append(r.Settings, s)
	}
	return r, nil
}

// Display returns the value to print for s: secrets are masked.
func (s Setting) Display() string {
	switch {
	case s.Value == "":
		return "(not set)"
	case IsSecretKey(s.Key):
		return "(set, hidden)"
	default:
		return s.Value
	}
}

// HasKey reports whether key is a profile key.
func HasKey(key string) bool { return slices.Contains(Keys(), key) }
