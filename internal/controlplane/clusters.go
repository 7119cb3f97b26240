package controlplane

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// POST /api/atlas/v2/groups/{groupId}/clusters registers a destination cluster.
func (s *Server) handleCreateCluster(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	var req api.ClusterRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), true)
	if err != nil {
		return err
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	cs, err := parseConnectionString("connectionString", req.ConnectionString)
	if err != nil {
		return err
	}
	if err := checkText("username", req.Username, maxTextLength); err != nil {
		return err
	}
	if len(req.Password) > maxTextLength*4 {
		return badRequest("INVALID_ATTRIBUTE", "password is longer than %d bytes", maxTextLength*4)
	}
	if req.Password != "" && req.Username == "" && !cs.HasUser {
		return badRequest("MISSING_ATTRIBUTE", "password needs a username: in username or in connectionString")
	}
	conn, display, user, password := splitCluster(cs, req.Username, req.Password)
	now := time.Now()
	c := api.Cluster{ID: newID(now), GroupID: pr.ID, Name: req.Name, ConnectionString: display, Username: user}
	var pw []byte
	if password != "" {
		pw = s.sealer.seal([]byte(password))
	}
	_, err = s.store.db.ExecContext(ctx, `INSERT INTO clusters (id, group_id, name, conn_redacted, conn_enc, username, password_enc, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.GroupID, c.Name, c.ConnectionString, s.sealer.seal([]byte(conn)), c.Username, pw, ms(now))
	if isUniqueViolation(err) {
		return conflict("DUPLICATE_CLUSTER_NAME", "a cluster named %q exists in this project", req.Name)
	}
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// GET /api/atlas/v2/groups/{groupId}/clusters
func (s *Server) handleListClusters(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), false)
	if err != nil {
		return err
	}
	rows, err := s.store.db.QueryContext(ctx, `SELECT id, name, conn_redacted, username FROM clusters WHERE group_id = ? ORDER BY name`, pr.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	page := api.Page[api.Cluster]{Results: []api.Cluster{}}
	for rows.Next() {
		c := api.Cluster{GroupID: pr.ID}
		if err := rows.Scan(&c.ID, &c.Name, &c.ConnectionString, &c.Username); err != nil {
			return err
		}
		page.Results = append(page.Results, c)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// GET /api/atlas/v2/groups/{groupId}/clusters/{clusterName}
func (s *Server) handleGetCluster(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), false)
	if err != nil {
		return err
	}
	name := r.PathValue("clusterName")
	c := api.Cluster{GroupID: pr.ID, Name: name}
	err = s.store.db.QueryRowContext(ctx, `SELECT id, conn_redacted, username FROM clusters WHERE group_id = ? AND name = ?`, pr.ID, name).Scan(&c.ID, &c.ConnectionString, &c.Username)
	if isNoRows(err) {
		return clusterNotFound(name, pr.ID)
	}
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, c)
	return nil
}

// DELETE /api/atlas/v2/groups/{groupId}/clusters/{clusterName}; refused while
// a migration targets the cluster.
func (s *Server) handleDeleteCluster(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), true)
	if err != nil {
		return err
	}
	name := r.PathValue("clusterName")
	err = s.store.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM migrations WHERE group_id = ? AND destination_cluster = ? AND status IN ('NEW', 'WORKING')`, pr.ID, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict("CLUSTER_IN_USE", "a live migration targets cluster %q", name)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM clusters WHERE group_id = ? AND name = ?`, pr.ID, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return clusterNotFound(name, pr.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// destination loads and decrypts the destination cluster for the agent.
func (s *Server) destination(ctx context.Context, q querier, groupID, name string) (api.DestinationCluster, error) {
	d := api.DestinationCluster{Name: name}
	var connEnc, pwEnc []byte
	err := q.QueryRowContext(ctx, `SELECT conn_enc, username, password_enc FROM clusters WHERE group_id = ? AND name = ?`, groupID, name).Scan(&connEnc, &d.Username, &pwEnc)
	if err != nil {
		return d, err
	}
	conn, err := s.sealer.open(connEnc)
	if err != nil {
		return d, err
	}
	d.ConnectionString = string(conn)
	if len(pwEnc) > 0 {
		pw, err := s.sealer.open(pwEnc)
		if err != nil {
			return d, err
		}
		d.Password = string(pw)
	}
	return d, nil
}

// PUT /api/atlas/v2/groups/{groupId}/integrations/WEBHOOK configures the
// project's webhook (Atlas's integration path).
func (s *Server) handlePutWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	var req api.WebhookRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), true)
	if err != nil {
		return err
	}
	if _, err := s.checkWebhookURL(ctx, req.URL); err != nil {
		return err
	}
	if err := checkText("secret", req.Secret, maxTextLength); err != nil {
		return err
	}
	var secret []byte
	if req.Secret != "" {
		secret = s.sealer.seal([]byte(req.Secret))
	}
	display := displayWebhookURL(req.URL)
	if _, err := s.store.db.ExecContext(ctx, `UPDATE projects SET webhook_url = ?, webhook_url_enc = ?, webhook_secret = ? WHERE id = ?`,
		display, s.sealer.seal([]byte(req.URL)), secret, pr.ID); err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, api.Webhook{Type: "WEBHOOK", URL: display})
	return nil
}

// GET /api/atlas/v2/groups/{groupId}/integrations/WEBHOOK
func (s *Server) handleGetWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), false)
	if err != nil {
		return err
	}
	wh := api.Webhook{Type: "WEBHOOK"}
	if err := s.store.db.QueryRowContext(ctx, `SELECT webhook_url FROM projects WHERE id = ?`, pr.ID).Scan(&wh.URL); err != nil {
		return err
	}
	if wh.URL == "" {
		return notFound("webhook of project", pr.ID)
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, wh)
	return nil
}

// DELETE /api/atlas/v2/groups/{groupId}/integrations/WEBHOOK
func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), true)
	if err != nil {
		return err
	}
	if _, err := s.store.db.ExecContext(ctx, `UPDATE projects SET webhook_url = '', webhook_url_enc = NULL, webhook_secret = NULL WHERE id = ?`, pr.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
