package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/livemigrate/livemigrate/internal/api"
)

const (
	atlas = "/api/atlas/v2"
	v0530 = api.MediaType20240530
	v0101 = api.MediaType20230101
)

// Login opens a browser-style session (POST /api/session): later calls of this
// client use the session cookie and send the CSRF token.
func (c *Client) Login(ctx context.Context, username, password string) (api.Session, error) {
	var s api.Session
	err := c.do(ctx, http.MethodPost, "/api/session", "", api.SessionRequest{Username: username, Password: password}, &s)
	if err == nil {
		c.mu.Lock()
		c.csrf = s.CSRFToken
		c.mu.Unlock()
	}
	return s, err
}

// Logout ends the session (DELETE /api/session).
func (c *Client) Logout(ctx context.Context) error {
	err := c.do(ctx, http.MethodDelete, "/api/session", "", nil, nil)
	c.mu.Lock()
	c.csrf = ""
	c.mu.Unlock()
	return err
}

// Orgs lists the organizations the caller can see (GET /orgs).
func (c *Client) Orgs(ctx context.Context) ([]api.Org, error) {
	var p api.Page[api.Org]
	err := c.do(ctx, http.MethodGet, atlas+"/orgs", v0101, nil, &p)
	return p.Results, err
}

// CreateOrg creates an organization (POST /orgs; server administrators).
func (c *Client) CreateOrg(ctx context.Context, name string) (api.Org, error) {
	var o api.Org
	err := c.do(ctx, http.MethodPost, atlas+"/orgs", v0101, api.OrgRequest{Name: name}, &o)
	return o, err
}

// Org returns one organization (GET /orgs/{orgId}).
func (c *Client) Org(ctx context.Context, orgID string) (api.Org, error) {
	var o api.Org
	err := c.do(ctx, http.MethodGet, atlas+"/orgs/"+esc(orgID), v0101, nil, &o)
	return o, err
}

// CreateUser creates a user in an organization (POST /orgs/{orgId}/users).
func (c *Client) CreateUser(ctx context.Context, orgID string, req api.UserRequest) (api.User, error) {
	var u api.User
	err := c.do(ctx, http.MethodPost, atlas+"/orgs/"+esc(orgID)+"/users", v0101, req, &u)
	return u, err
}

// CreateAPIKey creates an API key (POST /orgs/{orgId}/apiKeys); the private
// key is only in this response.
func (c *Client) CreateAPIKey(ctx context.Context, orgID string, req api.APIKeyRequest) (api.APIKey, error) {
	var k api.APIKey
	err := c.do(ctx, http.MethodPost, atlas+"/orgs/"+esc(orgID)+"/apiKeys", v0101, req, &k)
	return k, err
}

// CreateServiceAccount creates a service account (POST
// /orgs/{orgId}/serviceAccounts); its secret is only in this response.
func (c *Client) CreateServiceAccount(ctx context.Context, orgID string, req api.ServiceAccountRequest) (api.ServiceAccount, error) {
	var sa api.ServiceAccount
	err := c.do(ctx, http.MethodPost, atlas+"/orgs/"+esc(orgID)+"/serviceAccounts", v0101, req, &sa)
	return sa, err
}

// DeleteServiceAccount deletes a service account and revokes its tokens.
func (c *Client) DeleteServiceAccount(ctx context.Context, orgID, clientID string) error {
	return c.do(ctx, http.MethodDelete, atlas+"/orgs/"+esc(orgID)+"/serviceAccounts/"+esc(clientID), v0101, nil, nil)
}

// Projects lists the projects the caller can see (GET /groups).
func (c *Client) Projects(ctx context.Context) ([]api.Project, error) {
	var p api.Page[api.Project]
	err := c.do(ctx, http.MethodGet, atlas+"/groups", v0101, nil, &p)
	return p.Results, err
}

// CreateProject creates a project (POST /groups).
func (c *Client) CreateProject(ctx context.Context, orgID, name string) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodPost, atlas+"/groups", v0101, api.ProjectRequest{Name: name, OrgID: orgID}, &p)
	return p, err
}

// Project returns one project (GET /groups/{groupId}).
func (c *Client) Project(ctx context.Context, groupID string) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodGet, atlas+"/groups/"+esc(groupID), v0101, nil, &p)
	return p, err
}

// CreateCluster registers a destination cluster (POST /groups/{groupId}/clusters).
func (c *Client) CreateCluster(ctx context.Context, groupID string, req api.ClusterRequest) (api.Cluster, error) {
	var cl api.Cluster
	err := c.do(ctx, http.MethodPost, atlas+"/groups/"+esc(groupID)+"/clusters", v0101, req, &cl)
	return cl, err
}

// Clusters lists a project's destination clusters.
func (c *Client) Clusters(ctx context.Context, groupID string) ([]api.Cluster, error) {
	var p api.Page[api.Cluster]
	err := c.do(ctx, http.MethodGet, atlas+"/groups/"+esc(groupID)+"/clusters", v0101, nil, &p)
	return p.Results, err
}

// Cluster returns one destination cluster by name.
func (c *Client) Cluster(ctx context.Context, groupID, name string) (api.Cluster, error) {
	var cl api.Cluster
	err := c.do(ctx, http.MethodGet, atlas+"/groups/"+esc(groupID)+"/clusters/"+esc(name), v0101, nil, &cl)
	return cl, err
}

// DeleteCluster removes a destination cluster (refused while a migration targets it).
func (c *Client) DeleteCluster(ctx context.Context, groupID, name string) error {
	return c.do(ctx, http.MethodDelete, atlas+"/groups/"+esc(groupID)+"/clusters/"+esc(name), v0101, nil, nil)
}

// SetWebhook configures the project's webhook (PUT /groups/{groupId}/integrations/WEBHOOK).
func (c *Client) SetWebhook(ctx context.Context, groupID string, req api.WebhookRequest) (api.Webhook, error) {
	var w api.Webhook
	err := c.do(ctx, http.MethodPut, atlas+"/groups/"+esc(groupID)+"/integrations/WEBHOOK", v0101, req, &w)
	return w, err
}

// Webhook returns the project's webhook configuration.
func (c *Client) Webhook(ctx context.Context, groupID string) (api.Webhook, error) {
	var w api.Webhook
	err := c.do(ctx, http.MethodGet, atlas+"/groups/"+esc(groupID)+"/integrations/WEBHOOK", v0101, nil, &w)
	return w, err
}

// DeleteWebhook removes the project's webhook.
func (c *Client) DeleteWebhook(ctx context.Context, groupID string) error {
	return c.do(ctx, http.MethodDelete, atlas+"/groups/"+esc(groupID)+"/integrations/WEBHOOK", v0101, nil, nil)
}

// CreateLinkToken creates the organization's link token, replacing any
// previous one (POST /orgs/{orgId}/liveMigrations/linkTokens).
func (c *Client) CreateLinkToken(ctx context.Context, orgID string, req api.LinkTokenRequest) (api.LinkToken, error) {
	if req.AccessListIPs == nil {
		req.AccessListIPs = []string{}
	}
	var t api.LinkToken
	err := c.do(ctx, http.MethodPost, atlas+"/orgs/"+esc(orgID)+"/liveMigrations/linkTokens", v0101, req, &t)
	return t, err
}

// DeleteLinkToken deletes the link token and revokes the organization's agents.
func (c *Client) DeleteLinkToken(ctx context.Context, orgID string) error {
	return c.do(ctx, http.MethodDelete, atlas+"/orgs/"+esc(orgID)+"/liveMigrations/linkTokens", v0101, nil, nil)
}

// AvailableProjects lists source projects with their migration hosts and deployments.
func (c *Client) AvailableProjects(ctx context.Context, orgID string) ([]api.AvailableProject, error) {
	var p []api.AvailableProject
	err := c.do(ctx, http.MethodGet, atlas+"/orgs/"+esc(orgID)+"/liveMigrations/availableProjects", v0101, nil, &p)
	return p, err
}

// Agents lists the organization's registered migration hosts (x-agents extension).
func (c *Client) Agents(ctx context.Context, orgID string) ([]api.Agent, error) {
	var p api.Page[api.Agent]
	err := c.do(ctx, http.MethodGet, atlas+"/orgs/"+esc(orgID)+"/liveMigrations/x-agents", v0101, nil, &p)
	return p.Results, err
}

// RevokeAgent revokes one migration host agent (x-agents/{agentId}): its
// credential is refused from its next call and its unfinished migrations fail.
func (c *Client) RevokeAgent(ctx context.Context, orgID, agentID string) error {
	return c.do(ctx, http.MethodDelete, atlas+"/orgs/"+esc(orgID)+"/liveMigrations/x-agents/"+esc(agentID), v0101, nil, nil)
}

// AgentRegistrations lists the agent registrations held for an owner's
// decision (status "" for all, else PENDING, APPROVED or REJECTED).
func (c *Client) AgentRegistrations(ctx context.Context, orgID string, status api.RegistrationDecision) ([]api.HeldRegistration, error) {
	var p api.Page[api.HeldRegistration]
	path := atlas + "/orgs/" + esc(orgID) + "/liveMigrations/x-agentRegistrations"
	if status != "" {
		path += "?status=" + url.QueryEscape(string(status))
	}
	err := c.do(ctx, http.MethodGet, path, v0101, nil, &p)
	return p.Results, err
}

// ApproveAgentRegistration approves a held registration: the host gets the
// agent identity it asked for (the previous agent's credential ends).
func (c *Client) ApproveAgentRegistration(ctx context.Context, orgID, registrationID string) (api.HeldRegistration, error) {
	var h api.HeldRegistration
	err := c.do(ctx, http.MethodPost, atlas+"/orgs/"+esc(orgID)+"/liveMigrations/x-agentRegistrations/"+esc(registrationID)+"/x-approve", v0101, nil, &h)
	return h, err
}

// RejectAgentRegistration rejects a held registration.
func (c *Client) RejectAgentRegistration(ctx context.Context, orgID, registrationID string) (api.HeldRegistration, error) {
	var h api.HeldRegistration
	err := c.do(ctx, http.MethodPost, atlas+"/orgs/"+esc(orgID)+"/liveMigrations/x-agentRegistrations/"+esc(registrationID)+"/x-reject", v0101, nil, &h)
	return h, err
}

func lm(groupID string) string { return atlas + "/groups/" + esc(groupID) + "/liveMigrations" }

// CreateValidation starts a pre-migration validation (POST …/liveMigrations/validate).
func (c *Client) CreateValidation(ctx context.Context, groupID string, req api.MigrationRequest) (api.Validation, error) {
	var v api.Validation
	err := c.do(ctx, http.MethodPost, lm(groupID)+"/validate", v0530, req, &v)
	return v, err
}

// Validation returns a validation (GET …/liveMigrations/validate/{validationId}).
func (c *Client) Validation(ctx context.Context, groupID, validationID string) (api.Validation, error) {
	var v api.Validation
	err := c.do(ctx, http.MethodGet, lm(groupID)+"/validate/"+esc(validationID), v0101, nil, &v)
	return v, err
}

// ValidationChecks returns the per-check results of a validation (x-checks extension).
func (c *Client) ValidationChecks(ctx context.Context, groupID, validationID string) (api.ValidationChecks, error) {
	var v api.ValidationChecks
	err := c.do(ctx, http.MethodGet, lm(groupID)+"/validate/"+esc(validationID)+"/x-checks", v0101, nil, &v)
	return v, err
}

// CreateMigration starts a live migration (POST …/liveMigrations → 201).
func (c *Client) CreateMigration(ctx context.Context, groupID string, req api.MigrationRequest) (api.Migration, error) {
	var m api.Migration
	err := c.do(ctx, http.MethodPost, lm(groupID), v0530, req, &m)
	return m, err
}

// Migration returns a live migration (GET …/liveMigrations/{id}).
func (c *Client) Migration(ctx context.Context, groupID, migrationID string) (api.Migration, error) {
	var m api.Migration
	err := c.do(ctx, http.MethodGet, lm(groupID)+"/"+esc(migrationID), v0101, nil, &m)
	return m, err
}

// Migrations lists a project's live migrations, newest first (extension).
func (c *Client) Migrations(ctx context.Context, groupID string) ([]api.Migration, error) {
	var p api.Page[api.Migration]
	err := c.do(ctx, http.MethodGet, lm(groupID), v0101, nil, &p)
	return p.Results, err
}

// Cutover confirms writes to the source are stopped and starts the cutover
// (PUT …/liveMigrations/{id}/cutover → 202).
func (c *Client) Cutover(ctx context.Context, groupID, migrationID string) error {
	return c.do(ctx, http.MethodPut, lm(groupID)+"/"+esc(migrationID)+"/cutover", v0101, nil, nil)
}

// CancelMigration stops a migration before cutover (x-cancel extension).
func (c *Client) CancelMigration(ctx context.Context, groupID, migrationID string) (api.Migration, error) {
	var m api.Migration
	err := c.do(ctx, http.MethodPost, lm(groupID)+"/"+esc(migrationID)+"/x-cancel", v0101, nil, &m)
	return m, err
}

// ExtendCutoverWindow adds 24 h to the cutover window (x-extend extension).
func (c *Client) ExtendCutoverWindow(ctx context.Context, groupID, migrationID string) (api.CutoverWindow, error) {
	var w api.CutoverWindow
	err := c.do(ctx, http.MethodPost, lm(groupID)+"/"+esc(migrationID)+"/x-extend", v0101, nil, &w)
	return w, err
}

// MigrationProgress returns the migration with its latest progress, cutover
// window and stall state (x-progress extension).
func (c *Client) MigrationProgress(ctx context.Context, groupID, migrationID string) (api.MigrationProgress, error) {
	var p api.MigrationProgress
	err := c.do(ctx, http.MethodGet, lm(groupID)+"/"+esc(migrationID)+"/x-progress", v0101, nil, &p)
	return p, err
}

// MigrationReport returns the final report of a COMPLETE migration (x-report extension).
func (c *Client) MigrationReport(ctx context.Context, groupID, migrationID string) (api.MigrationReport, error) {
	var r api.MigrationReport
	err := c.do(ctx, http.MethodGet, lm(groupID)+"/"+esc(migrationID)+"/x-report", v0101, nil, &r)
	return r, err
}

// MigrationEvents returns the migration's event log, oldest first (x-events extension).
func (c *Client) MigrationEvents(ctx context.Context, groupID, migrationID string) ([]api.Event, error) {
	var p api.Page[api.Event]
	err := c.do(ctx, http.MethodGet, lm(groupID)+"/"+esc(migrationID)+"/x-events", v0101, nil, &p)
	return p.Results, err
}
