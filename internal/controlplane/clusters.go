package controlplane

import (
	"context"
	"errors"
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
	err = s.store.CreateCluster(ctx, c, s.sealer.seal([]byte(conn)), pw, now)
	if errors.Is(err, errExists) {
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
	clusters, err := s.store.Clusters(ctx, pr.ID)
	if err != nil {
		return err
	}
	page := api.Page[api.Cluster]{Results: append([]api.Cluster{}, clusters...)}
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
	c, err := s.store.Cluster(ctx, pr.ID, name)
	if errors.Is(err, errNotFound) {
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
	switch err := s.store.DeleteCluster(ctx, pr.ID, name); {
	case errors.Is(err, errClusterInUse):
		return conflict("CLUSTER_IN_USE", "a live migration targets cluster %q", name)
	case errors.Is(err, errNotFound):
		return clusterNotFound(name, pr.ID)
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// destination loads and decrypts the destination cluster for the agent,
// with the store's queries on q (the database or a transaction);
// errNotFound when there is no such cluster.
func (s *Server) destination(ctx context.Context, st *store, groupID, name string) (api.DestinationCluster, error) {
	d := api.DestinationCluster{Name: name}
	c, err := st.ClusterSecrets(ctx, groupID, name)
	if err != nil {
		return d, err
	}
	d.Username = c.username
	conn, err := s.sealer.open(c.connEnc)
	if err != nil {
		return d, err
	}
	d.ConnectionString = string(conn)
	if len(c.passwordEnc) > 0 {
		pw, err := s.sealer.open(c.passwordEnc)
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
	if err := s.store.SetWebhook(ctx, pr.ID, display, s.sealer.seal([]byte(req.URL)), secret); err != nil {
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
	u, err := s.store.WebhookURL(ctx, pr.ID)
	if err != nil {
		return err
	}
	wh := api.Webhook{Type: "WEBHOOK", URL: u}
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
	if err := s.store.ClearWebhook(ctx, pr.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
