package api

import "time"

// RoleName is an Atlas role name.
type RoleName string

// Roles. ORG_OWNER may do everything in its organization; GROUP_OWNER may do
// everything in its project; ORG_MEMBER and GROUP_READ_ONLY may read.
const (
	RoleOrgOwner      RoleName = "ORG_OWNER"
	RoleOrgMember     RoleName = "ORG_MEMBER"
	RoleGroupOwner    RoleName = "GROUP_OWNER"
	RoleGroupReadOnly RoleName = "GROUP_READ_ONLY"
)

// Role grants RoleName on an organization (OrgID) or a project (GroupID).
type Role struct {
	OrgID    string   `json:"orgId,omitempty"`
	GroupID  string   `json:"groupId,omitempty"`
	RoleName RoleName `json:"roleName"`
}

// Org is an organization (GET/POST /orgs).
type Org struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// OrgRequest is the body of POST /orgs (server administrators only).
type OrgRequest struct {
	Name string `json:"name"`
}

// Project is a project, Atlas's "group" (GET/POST /groups).
type Project struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	OrgID string `json:"orgId"`
}

// ProjectRequest is the body of POST /groups.
type ProjectRequest struct {
	Name  string `json:"name"`
	OrgID string `json:"orgId"`
}

// UserRequest is the body of POST /orgs/{orgId}/users.
type UserRequest struct {
	Username string `json:"username"`
	// Password is write-only.
	Password string `json:"password"`
	Roles    []Role `json:"roles"`
}

// User is a person who logs in with username and password.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Roles    []Role `json:"roles"`
}

// APIKeyRequest is the body of POST /orgs/{orgId}/apiKeys.
type APIKeyRequest struct {
	Desc  string `json:"desc"`
	Roles []Role `json:"roles"`
}

// APIKey is an API credential. PrivateKey is returned only by create.
type APIKey struct {
	ID         string `json:"id"`
	Desc       string `json:"desc"`
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey,omitempty"`
	Roles      []Role `json:"roles"`
}

// ClusterRequest registers a destination cluster: POST /groups/{groupId}/clusters.
type ClusterRequest struct {
	Name string `json:"name"`
	// ConnectionString is write-only (it may carry credentials).
	ConnectionString string `json:"connectionString"`
	Username         string `json:"username,omitempty"`
	// Password is write-only.
	Password string `json:"password,omitempty"`
}

// Cluster is a destination cluster. The connection string is returned with
// any credentials removed.
type Cluster struct {
	ID               string `json:"id"`
	GroupID          string `json:"groupId"`
	Name             string `json:"name"`
	ConnectionString string `json:"connectionString"`
	Username         string `json:"username,omitempty"`
}

// WebhookRequest configures the project's webhook:
// PUT /groups/{groupId}/integrations/WEBHOOK. Deliveries are POSTs of Event
// with header X-Livemigrate-Signature: sha256=<hex HMAC-SHA256 of the body with Secret>.
type WebhookRequest struct {
	URL string `json:"url"`
	// Secret is write-only.
	Secret string `json:"secret,omitempty"`
}

// Webhook is the project's webhook configuration.
type Webhook struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Agent is a registered migration host (x-agents).
type Agent struct {
	ID           string    `json:"id"`
	Hostname     string    `json:"hostname"`
	Version      string    `json:"version"`
	RegisteredAt time.Time `json:"registeredAt"`
	LastSeenAt   time.Time `json:"lastSeenAt"`
	// Lost is true when the agent missed its heartbeats.
	Lost bool `json:"lost"`
}

// RegistrationDecision is the state of a held agent registration.
type RegistrationDecision string

// Held registration states.
const (
	DecisionPending  RegistrationDecision = "PENDING"
	DecisionApproved RegistrationDecision = "APPROVED"
	DecisionRejected RegistrationDecision = "REJECTED"
)

// HeldRegistration is an agent registration waiting for (or given) an
// operator's decision (x-agentRegistrations): the hostname already had a
// live agent and the request lacked its credential, or an operator had
// revoked the hostname's agent. Approving it gives the hostname's agent
// identity (and so its migrations) to the new host and ends the previous
// agent's credential.
type HeldRegistration struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	// AgentID is the live agent it would replace (empty: a new agent).
	AgentID       string               `json:"agentId,omitempty"`
	RemoteAddress string               `json:"remoteAddress"`
	Reason        string               `json:"reason"`
	Status        RegistrationDecision `json:"status"`
	CreatedAt     time.Time            `json:"createdAt"`
	DecidedAt     *time.Time           `json:"decidedAt,omitempty"`
	DecidedBy     string               `json:"decidedBy,omitempty"`
}

// SessionRequest is the body of POST /api/session.
type SessionRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Session is the response of POST /api/session and GET /api/session. The
// session itself is in an HttpOnly cookie; CSRFToken must be sent in the
// X-CSRF-Token header of every unsafe request made with the cookie.
type Session struct {
	Username  string    `json:"username"`
	CSRFToken string    `json:"csrfToken"`
	ExpiresAt time.Time `json:"expiresAt"`
	Roles     []Role    `json:"roles"`
}
