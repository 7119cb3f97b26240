package controlplane

import (
	"context"
	"errors"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// The store's destination clusters and the projects' webhook settings.

// CreateCluster inserts c with its sealed connection string and password
// (nil: none); errExists when its name is taken in the project.
func (s *store) CreateCluster(ctx context.Context, c api.Cluster, connEnc, passwordEnc []byte, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO clusters (id, group_id, name, conn_redacted, conn_enc, username, password_enc, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.GroupID, c.Name, c.ConnectionString, connEnc, c.Username, passwordEnc, ms(now))
	return existsIf(err)
}

// Clusters lists project groupID's clusters by name (display forms only).
func (s *store) Clusters(ctx context.Context, groupID string) ([]api.Cluster, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, name, conn_redacted, username FROM clusters WHERE group_id = ? ORDER BY name`, groupID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.Cluster
	for rows.Next() {
		c := api.Cluster{GroupID: groupID}
		if err := rows.Scan(&c.ID, &c.Name, &c.ConnectionString, &c.Username); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Cluster loads cluster name of project groupID (display form only).
func (s *store) Cluster(ctx context.Context, groupID, name string) (api.Cluster, error) {
	c := api.Cluster{GroupID: groupID, Name: name}
	err := s.q.QueryRowContext(ctx, `SELECT id, conn_redacted, username FROM clusters WHERE group_id = ? AND name = ?`, groupID, name).Scan(&c.ID, &c.ConnectionString, &c.Username)
	return c, notFoundIf(err)
}

// errClusterInUse: a live migration targets the cluster.
var errClusterInUse = errors.New("a live migration targets the cluster")

// DeleteCluster deletes cluster name of project groupID unless a NEW or
// WORKING migration targets it (errClusterInUse); errNotFound when there is
// no such cluster.
func (s *store) DeleteCluster(ctx context.Context, groupID, name string) error {
	return s.Tx(ctx, func(st *store) error {
		var n int
		if err := st.q.QueryRowContext(ctx, `SELECT count(*) FROM migrations WHERE group_id = ? AND destination_cluster = ? AND status IN ('NEW', 'WORKING')`, groupID, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errClusterInUse
		}
		res, err := st.q.ExecContext(ctx, `DELETE FROM clusters WHERE group_id = ? AND name = ?`, groupID, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotFound
		}
		return nil
	})
}

// sealedCluster is a cluster's stored connection: the display form, the
// sealed connection string (no password in it), the user and the sealed
// password (nil: none).
type sealedCluster struct {
	id, display, username string
	connEnc, passwordEnc  []byte
}

// ClusterSecrets loads the stored connection of cluster name of project groupID.
func (s *store) ClusterSecrets(ctx context.Context, groupID, name string) (sealedCluster, error) {
	var c sealedCluster
	err := s.q.QueryRowContext(ctx, `SELECT id, conn_redacted, conn_enc, username, password_enc FROM clusters WHERE group_id = ? AND name = ?`, groupID, name).
		Scan(&c.id, &c.display, &c.connEnc, &c.username, &c.passwordEnc)
	return c, notFoundIf(err)
}

// AllClusterSecrets lists the stored connection of every cluster.
func (s *store) AllClusterSecrets(ctx context.Context) ([]sealedCluster, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, conn_redacted, conn_enc, username, password_enc FROM clusters`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sealedCluster
	for rows.Next() {
		var c sealedCluster
		if err := rows.Scan(&c.id, &c.display, &c.connEnc, &c.username, &c.passwordEnc); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetClusterDisplay replaces cluster id's display form only.
func (s *store) SetClusterDisplay(ctx context.Context, id, display string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE clusters SET conn_redacted = ? WHERE id = ?`, display, id)
	return err
}

// SetClusterSecrets replaces cluster c.id's stored connection.
func (s *store) SetClusterSecrets(ctx context.Context, c sealedCluster) error {
	_, err := s.q.ExecContext(ctx, `UPDATE clusters SET conn_redacted = ?, conn_enc = ?, username = ?, password_enc = ? WHERE id = ?`,
		c.display, c.connEnc, c.username, c.passwordEnc, c.id)
	return err
}

// SetWebhook sets project groupID's webhook: its display URL, the sealed
// URL and the sealed signing secret (nil: none).
func (s *store) SetWebhook(ctx context.Context, groupID, display string, urlEnc, secretEnc []byte) error {
	_, err := s.q.ExecContext(ctx, `UPDATE projects SET webhook_url = ?, webhook_url_enc = ?, webhook_secret = ? WHERE id = ?`,
		display, urlEnc, secretEnc, groupID)
	return err
}

// WebhookURL is the display URL of project groupID's webhook ("" when it
// has none); errNotFound when there is no such project.
func (s *store) WebhookURL(ctx context.Context, groupID string) (string, error) {
	var u string
	err := s.q.QueryRowContext(ctx, `SELECT webhook_url FROM projects WHERE id = ?`, groupID).Scan(&u)
	return u, notFoundIf(err)
}

// ClearWebhook removes project groupID's webhook.
func (s *store) ClearWebhook(ctx context.Context, groupID string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE projects SET webhook_url = '', webhook_url_enc = NULL, webhook_secret = NULL WHERE id = ?`, groupID)
	return err
}

// clearWebhook is a webhook URL stored in clear (by older versions).
type clearWebhook struct{ groupID, url string }

// ClearWebhookURLs lists the projects whose webhook URL is not sealed.
func (s *store) ClearWebhookURLs(ctx context.Context) ([]clearWebhook, error) {
	return queryAll(ctx, s.q, func(rows rowScanner) (clearWebhook, error) {
		var h clearWebhook
		err := rows.Scan(&h.groupID, &h.url)
		return h, err
	}, `SELECT id, webhook_url FROM projects WHERE webhook_url != '' AND webhook_url_enc IS NULL`)
}

// SealWebhookURL replaces project groupID's webhook URL with its display
// form and sealed URL (the signing secret is kept).
func (s *store) SealWebhookURL(ctx context.Context, groupID, display string, urlEnc []byte) error {
	_, err := s.q.ExecContext(ctx, `UPDATE projects SET webhook_url = ?, webhook_url_enc = ? WHERE id = ?`, display, urlEnc, groupID)
	return err
}
