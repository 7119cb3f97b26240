// Package api holds the JSON wire types of livemigrate's control plane: the
// Atlas-shaped Admin API under /api/atlas/v2 and the agent protocol under
// /api/agent/v1. It has no logic; the server (internal/controlplane) and the
// one typed client (internal/client) both use these types, so they are the
// contract between the control plane, the agent, the CLI and the web UI.
//
// # Admin API
//
// Paths, fields, enums and status codes of the eight Atlas live-migration
// endpoints follow Atlas exactly (see MigrationRequest, Migration, Validation,
// LinkToken, AvailableProject). Extensions Atlas lacks carry an "x-" path
// segment so they can never collide with a future Atlas path:
//
//	GET  /api/atlas/v2/groups/{groupId}/liveMigrations                     list (Page[Migration]; Atlas has no GET on the collection)
//	GET  /api/atlas/v2/groups/{groupId}/liveMigrations/{id}/x-progress     MigrationProgress
//	POST /api/atlas/v2/groups/{groupId}/liveMigrations/{id}/x-cancel       202, Migration
//	POST /api/atlas/v2/groups/{groupId}/liveMigrations/{id}/x-extend       200, CutoverWindow (+24 h)
//	GET  /api/atlas/v2/groups/{groupId}/liveMigrations/{id}/x-report       MigrationReport (404 until COMPLETE)
//	GET  /api/atlas/v2/groups/{groupId}/liveMigrations/{id}/x-events       Page[Event]
//	GET  /api/atlas/v2/groups/{groupId}/liveMigrations/validate/{id}/x-checks  ValidationChecks
//	GET  /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agents                Page[Agent]
//	DELETE /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agents/{agentId}    204 (revokes one agent)
//	GET  /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agentRegistrations[?status=]  Page[HeldRegistration]
//	POST /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agentRegistrations/{id}/x-approve  200 HeldRegistration
//	POST /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agentRegistrations/{id}/x-reject   200 HeldRegistration
//
// One extension field is added to Atlas's Migration: hostLost, set while the
// migration host has missed its heartbeats (then readyForCutover is false,
// lagTimeSeconds null, and cutover answers 409 MIGRATION_HOST_LOST). One is
// added to Atlas's available deployment: unreachable, the reason the
// migration host could not reach or describe it (its other details are then
// unknown, not zero).
//
// Versions: every resource serves MediaType20230101, create and validate
// also MediaType20240530 (their default); an Accept naming only other
// versions gets 406. Errors always use ErrorEnvelope. Write-only fields (passwords, secrets,
// dropDestinationData) are accepted in requests and never returned.
//
// # Authentication
//
// Admin API calls authenticate with HTTP Digest using an API key (public key
// as user, private key as password; what the Atlas SDK and CLI send), HTTP
// Basic using an API key or a user's username and password, a service
// account's Bearer token (ServiceAccount; POST /api/oauth/token with the
// client-credentials grant → OAuthToken), or the session cookie returned by
// POST /api/session (SessionRequest → Session). Session-authenticated
// requests with an unsafe method (POST, PUT, PATCH, DELETE) must carry the
// session's CSRF token in the X-CSRF-Token header. DELETE /api/session logs
// out. Unsafe requests authenticated by what a browser attaches by itself
// (Digest, Basic, the cookie) must be same-origin (Sec-Fetch-Site, Origin)
// and carry JSON if they have a body. A 401 challenges API clients with
// WWW-Authenticate: Digest (first) and Basic; browsers get no challenge.
// Failed credential checks are limited per account, account and address, and
// address: past the limits the answer is 429 RATE_LIMITED with Retry-After.
//
// Credentials are listed and revoked with Atlas's paths: GET
// /orgs/{orgId}/apiKeys (Page[APIKey], no private keys), DELETE
// /orgs/{orgId}/apiKeys/{apiUserId}, GET /orgs/{orgId}/users (Page[User]),
// DELETE /orgs/{orgId}/users/{userId}; all 204 on delete, refused from the
// next request. GET /orgs/{orgId}/events is the org's audit trail
// (Page[AuditEvent]).
//
// # Agent protocol
//
// The agent initiates every call (HTTP+JSON); the control plane never
// connects to the migration host. All paths are under /api/agent/v1:
//
//	POST /register                       AgentRegisterRequest → 200 AgentRegistration, or 202 when held for an owner's approval (the link token is the credential)
//	POST /heartbeat                      AgentHeartbeat → 204
//	PUT  /deployments                    DeploymentsReport → 204 (replaces this agent's list; feeds availableProjects)
//	GET  /work?waitSeconds=N             → 200 WorkItems (long-poll; empty Items after N seconds, N ≤ 30)
//	POST /work/{itemId}/ack              → 204 (the agent has taken the item; un-acked items are delivered again)
//	POST /validations/{validationId}/result  ValidationResult → 204
//	POST /migrations/{migrationId}/progress  Progress → 200 ProgressAck (at least every ProgressIntervalSeconds)
//	POST /migrations/{migrationId}/report    Report → 204 (final; the migration becomes COMPLETE)
//
// Every call but register carries "Authorization: Bearer <AgentSecret>", the
// agent's own credential (issued at its first registration; the agent keeps
// it and sends it with every later registration). A hostname that has a live
// agent is given only to the holder of its credential: any other
// registration is held (202, RegistrationPending) until an organization
// owner approves or rejects it, and gets no work and no secrets. Refusals
// say why: AGENT_REVOKED, AGENT_CREDENTIAL_REPLACED,
// AGENT_REGISTRATION_PENDING (401), AGENT_REGISTRATION_REJECTED (403). The
// link token's accessListIps, when set, are enforced on every agent call.
// Work items are delivered at least once: the agent acks an item when it has
// taken it and must treat a repeated item ID as already taken. An agent that
// restarts re-registers with its credential (same agent, same migrations)
// and resumes its running migration; ProgressAck tells it what the control plane
// wants (continue, cut over, stop) in case a work item was missed.
//
// # Link token
//
// A link token is base64url (no padding) of the JSON of LinkTokenClaims. It
// is self-contained: the agent needs nothing else to find the control plane.
// The control plane stores only a hash of the secret and shows the token once.
package api
