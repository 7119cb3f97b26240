package api

import "time"

// AuditEvent is one entry of an organization's audit trail
// (GET /orgs/{orgId}/events): who (a user or an API key, and from which
// address) did what (the route) to which target (the request path), and
// how it was answered. Request bodies are never recorded, so secrets are not.
type AuditEvent struct {
	ID            string    `json:"id"`
	Created       time.Time `json:"created"`
	EventTypeName string    `json:"eventTypeName"`
	OrgID         string    `json:"orgId"`
	GroupID       string    `json:"groupId,omitempty"`
	UserID        string    `json:"userId,omitempty"`
	Username      string    `json:"username,omitempty"`
	APIKeyID      string    `json:"apiKeyId,omitempty"`
	PublicKey     string    `json:"publicKey,omitempty"`
	// Hostname is the migration host of an agent registration an operator
	// must decide on (eventTypeName MIGRATION_HOST_TAKEOVER_ATTEMPT or
	// MIGRATION_HOST_REGISTRATION_HELD).
	Hostname      string `json:"x-hostname,omitempty"`
	RemoteAddress string `json:"remoteAddress"`
	// Action is the route ("DELETE /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}"),
	// Target the request path, Status the answer's HTTP status.
	Action string `json:"x-action"`
	Target string `json:"x-target"`
	Status int    `json:"x-status"`
}
