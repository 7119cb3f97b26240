package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/livemigrate/livemigrate/internal/api"
)

// storedCredential is the agent's own credential, kept in the state
// directory so that a restarted agent proves it is the host that
// registered (without it, a registration of a hostname that has a live
// agent waits for an operator's approval).
type storedCredential struct {
	URL      string `json:"url"`
	OrgID    string `json:"orgId"`
	Hostname string `json:"hostname"`
	// Status is ACTIVE or PENDING_APPROVAL (RegistrationID set).
	Status         api.AgentRegistrationStatus `json:"status"`
	RegistrationID string                      `json:"registrationId,omitempty"`
	AgentID        string                      `json:"agentId,omitempty"`
	AgentSecret    string                      `json:"agentSecret"`
}

// credentialPath is the state file of this link's org and hostname.
func (a *Agent) credentialPath() string {
	if a.opts.StateDir == "" {
		return ""
	}
	return filepath.Join(a.opts.StateDir, "credential-"+a.claims.OrgID+"-"+a.opts.Hostname+".json")
}

// loadCredential reads the stored credential; none (no state directory,
// no file) is not an error. A file readable by others is made 0600.
func (a *Agent) loadCredential() error {
	path := a.credentialPath()
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent state %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("agent state %s is readable by others (mode %v) and cannot be made 0600: %w", path, st.Mode().Perm(), err)
		}
		a.logger.Warn("agent credential file was readable by others; set to 0600", "path", path, "was", st.Mode().Perm().String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("agent state %s: %w", path, err)
	}
	var c storedCredential
	if err := json.Unmarshal(b, &c); err != nil || c.AgentSecret == "" {
		return fmt.Errorf("agent state %s is not an agent credential file: move it away (the next registration of this host then needs an operator's approval)", path)
	}
	if c.URL != a.claims.URL {
		// The control plane moved; the credential is still this host's.
		a.logger.Info("stored agent credential was issued by another control plane URL", "stored", c.URL, "now", a.claims.URL)
	}
	a.mu.Lock()
	a.cred = c
	a.mu.Unlock()
	return nil
}

// saveCredential keeps c (memory, and the state file when there is a state
// directory): written to a temporary file, synced, then renamed, so a
// crash leaves the old or the new credential, never a torn one.
func (a *Agent) saveCredential(c storedCredential) error {
	c.URL, c.OrgID, c.Hostname = a.claims.URL, a.claims.OrgID, a.opts.Hostname
	a.mu.Lock()
	same := a.cred == c
	a.cred = c
	a.mu.Unlock()
	path := a.credentialPath()
	if path == "" || same {
		return nil
	}
	if err := os.MkdirAll(a.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("agent state directory: %w", err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	f, err := os.CreateTemp(a.opts.StateDir, ".credential-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("agent state directory: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keep the agent credential in %s: %w", path, err)
	}
	if d, err := os.Open(a.opts.StateDir); err == nil {
		_ = d.Sync() // the rename is durable
		d.Close()
	}
	return nil
}

func (a *Agent) storedSecret() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cred.AgentSecret
}
