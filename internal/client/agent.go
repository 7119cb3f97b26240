package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

const agentPath = "/api/agent/v1"

// RegisterAgent registers a new migration host with a link token. It needs
// no credentials: the control plane's URL comes from the token. Use the
// returned client (authenticated with the new agent secret) for every
// later agent call. A hostname that already has a live agent is held for
// an operator's approval: see RegisterAgentWith.
func RegisterAgent(ctx context.Context, linkToken, hostname, version string, opts ...Option) (*Client, api.AgentRegistration, error) {
	cl, reg, err := RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: linkToken, Hostname: hostname, Version: version}, opts...)
	if err == nil && cl == nil {
		err = fmt.Errorf("register migration host %s: %s", hostname, reg.Detail)
	}
	return cl, reg, err
}

// RegisterAgentWith registers with req, whose AgentSecret (when set) is the
// credential the host kept from an earlier registration. An ACTIVE
// registration returns a client authenticated with reg.AgentSecret; a
// held one (reg.Status PENDING_APPROVAL) returns a nil client: keep
// reg.AgentSecret and register again with it after reg.RetryAfterSeconds.
func RegisterAgentWith(ctx context.Context, req api.AgentRegisterRequest, opts ...Option) (*Client, api.AgentRegistration, error) {
	claims, err := ParseLinkToken(req.LinkToken)
	if err != nil {
		return nil, api.AgentRegistration{}, err
	}
	c := New(claims.URL, nil, opts...)
	reg, err := c.Register(ctx, req)
	if err != nil {
		return nil, reg, err
	}
	if reg.Status == api.RegistrationPending {
		return nil, reg, nil
	}
	if reg.AgentSecret == "" {
		return nil, reg, fmt.Errorf("register migration host %s: the control plane answered without an agent secret", req.Hostname)
	}
	return New(claims.URL, AgentSecret(reg.AgentSecret), opts...), reg, nil
}

// Register calls POST /api/agent/v1/register on this client's control plane.
func (c *Client) Register(ctx context.Context, req api.AgentRegisterRequest) (api.AgentRegistration, error) {
	var reg api.AgentRegistration
	err := c.do(ctx, http.MethodPost, agentPath+"/register", "", req, &reg)
	return reg, err
}

// Heartbeat tells the control plane the agent is alive.
func (c *Client) Heartbeat(ctx context.Context, hb api.AgentHeartbeat) error {
	return c.do(ctx, http.MethodPost, agentPath+"/heartbeat", "", hb, nil)
}

// ReportDeployments replaces the list of source deployments the agent reaches.
func (c *Client) ReportDeployments(ctx context.Context, deployments []api.Deployment) error {
	if deployments == nil {
		deployments = []api.Deployment{}
	}
	return c.do(ctx, http.MethodPut, agentPath+"/deployments", "", api.DeploymentsReport{Deployments: deployments}, nil)
}

// PollWork long-polls for work, waiting up to wait (the server caps it at
// MaxWaitSeconds). It returns no items when none came in time. Ack each item
// once taken; un-acked items come again.
func (c *Client) PollWork(ctx context.Context, wait time.Duration) ([]api.WorkItem, error) {
	var w api.WorkItems
	err := c.do(ctx, http.MethodGet, agentPath+"/work?waitSeconds="+strconv.Itoa(int(wait/time.Second)), "", nil, &w)
	return w.Items, err
}

// AckWork marks a work item as taken. Acking twice is harmless.
func (c *Client) AckWork(ctx context.Context, itemID string) error {
	return c.do(ctx, http.MethodPost, agentPath+"/work/"+esc(itemID)+"/ack", "", nil, nil)
}

// PostValidationResult reports the outcome of a validate work item.
func (c *Client) PostValidationResult(ctx context.Context, validationID string, res api.ValidationResult) error {
	return c.do(ctx, http.MethodPost, agentPath+"/validations/"+esc(validationID)+"/result", "", res, nil)
}

// PostProgress reports a running migration's progress (at least every
// ProgressIntervalSeconds) and returns what the control plane wants next.
func (c *Client) PostProgress(ctx context.Context, migrationID string, p api.Progress) (api.ProgressAck, error) {
	var ack api.ProgressAck
	err := c.do(ctx, http.MethodPost, agentPath+"/migrations/"+esc(migrationID)+"/progress", "", p, &ack)
	return ack, err
}

// PostReport sends the final report after cutover; the migration becomes COMPLETE.
func (c *Client) PostReport(ctx context.Context, migrationID string, r api.Report) error {
	return c.do(ctx, http.MethodPost, agentPath+"/migrations/"+esc(migrationID)+"/report", "", r, nil)
}
