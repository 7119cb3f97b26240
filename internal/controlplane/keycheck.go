package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/livemigrate/livemigrate/internal/mdb"
)

// canaryPlain is the value sealed into secrets_canary when a store is first
// opened with a key.
const canaryPlain = "livemigrate secrets canary v1"

// errWrongKey is returned by New when the secrets key cannot open the
// store's sealed values.
var errWrongKey = errors.New("the secrets key does not open this store's secrets: it is not the key the store was created with; start with the original key file (--key-file) or $LIVEMIGRATE_SECRET_KEY")

// checkKey opens the store's canary with the key, writing the canary on a
// store that has none. A store from before the canary is checked against
// one of its sealed values first. A wrong key is reported here, at start,
// not as a failure of every later request that needs a secret.
func (s *Server) checkKey(ctx context.Context) error {
	sealed, err := s.store.Canary(ctx)
	if err == nil {
		if plain, err := s.sealer.open(sealed); err != nil || string(plain) != canaryPlain {
			return fmt.Errorf("open store %s: %w", s.opts.DataPath, errWrongKey)
		}
		return nil
	}
	if !errors.Is(err, errNotFound) {
		return err
	}
	old, err := s.store.AnySealedValue(ctx)
	if err == nil {
		if _, err := s.sealer.open(old); err != nil {
			return fmt.Errorf("open store %s: %w", s.opts.DataPath, errWrongKey)
		}
	} else if !errors.Is(err, errNotFound) {
		return err
	}
	return s.store.SetCanary(ctx, s.sealer.seal([]byte(canaryPlain)))
}

// splitCluster separates a destination's connection string from its
// credentials: the stored connection string has no password (it moves to
// the sealed password column), and the display form has no secret at all.
// A user name without a password stays in the connection string (X.509 and
// Kerberos users). reqUser and reqPassword are the request's credentials,
// which take precedence; a request password without a user name is the
// password of the connection string's user.
func splitCluster(c *mdb.ConnString, reqUser, reqPassword string) (conn, display, user, password string) {
	user, password = reqUser, reqPassword
	if user == "" && password != "" && c.HasUser {
		user = c.Username
		c = c.WithoutUserInfo()
	}
	if c.HasPassword {
		if user == "" {
			user, password = c.Username, c.Password
		}
		c = c.WithoutUserInfo()
	}
	return c.String(), c.Redacted(), user, password
}

// resealStored rewrites the secrets of a store written before credentials
// were kept apart from URIs: a destination connection string with a password
// has it moved to the sealed password column and its display form
// recomputed; a webhook URL with user information is sealed and shown
// without it. It is idempotent and runs at every start.
func (s *Server) resealStored(ctx context.Context) error {
	changed := false
	err := s.store.Tx(ctx, func(st *store) error {
		clusters, err := st.AllClusterSecrets(ctx)
		if err != nil {
			return err
		}
		for _, r := range clusters {
			plain, err := s.sealer.open(r.connEnc)
			if err != nil {
				return fmt.Errorf("cluster %s: %w", r.id, err)
			}
			var password string
			if len(r.passwordEnc) > 0 {
				p, err := s.sealer.open(r.passwordEnc)
				if err != nil {
					return fmt.Errorf("cluster %s: %w", r.id, err)
				}
				password = string(p)
			}
			c, err := mdb.ParseURIUnchecked(string(plain))
			if err != nil {
				// Kept for the agent as it is; shown as safely as it can be.
				if d := mdb.Redact(string(plain)); d != r.display {
					if err := st.SetClusterDisplay(ctx, r.id, d); err != nil {
						return err
					}
				}
				continue
			}
			conn, display, user, pw := splitCluster(c, r.username, password)
			if conn == string(plain) && display == r.display && user == r.username && pw == password {
				continue
			}
			var pwEnc []byte
			if pw != "" {
				pwEnc = s.sealer.seal([]byte(pw))
			}
			if err := st.SetClusterSecrets(ctx, sealedCluster{id: r.id, display: display, connEnc: s.sealer.seal([]byte(conn)), username: user, passwordEnc: pwEnc}); err != nil {
				return err
			}
			changed = true
		}
		hooks, err := st.ClearWebhookURLs(ctx)
		if err != nil {
			return err
		}
		for _, h := range hooks {
			if err := st.SealWebhookURL(ctx, h.groupID, displayWebhookURL(h.url), s.sealer.seal([]byte(h.url))); err != nil {
				return err
			}
			changed = true
		}
		return nil
	})
	if err != nil || !changed {
		return err
	}
	// The clear values were overwritten (secure_delete); move the pages out
	// of the WAL too, so the old ones are gone from both files.
	return s.store.Checkpoint(ctx)
}

// displayWebhookURL is a webhook URL without user information and with the
// query's values removed (they may carry tokens).
func displayWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
