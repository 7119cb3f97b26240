package api

import "time"

// Media types of the Atlas Admin API. Create and validate use the 2024-05-30
// version, everything else 2023-01-01; plain application/json is accepted too.
const (
	MediaType20240530 = "application/vnd.atlas.2024-05-30+json"
	MediaType20230101 = "application/vnd.atlas.2023-01-01+json"
)

// ErrorEnvelope is the body of every error response, Atlas's ApiError:
// {error, errorCode, detail, reason, parameters, badRequestDetail}. Error
// repeats the HTTP status code; Parameters are the identifiers the detail
// names; BadRequestDetail names the request field at fault of a 400.
type ErrorEnvelope struct {
	Error            int               `json:"error"`
	ErrorCode        string            `json:"errorCode"`
	Detail           string            `json:"detail"`
	Reason           string            `json:"reason"`
	Parameters       []any             `json:"parameters"`
	BadRequestDetail *BadRequestDetail `json:"badRequestDetail,omitempty"`
}

// BadRequestDetail lists the request's field violations.
type BadRequestDetail struct {
	Fields []FieldViolation `json:"fields"`
}

// FieldViolation is one field at fault and what is wrong with it.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// LinkTokenRequest is the body of POST /orgs/{orgId}/liveMigrations/linkTokens.
type LinkTokenRequest struct {
	AccessListIPs []string `json:"accessListIps"`
}

// LinkToken is the response of POST …/linkTokens. The token is shown only here.
type LinkToken struct {
	LinkToken string `json:"linkToken"`
}

// LinkTokenClaims is what a link token carries, JSON-encoded and then
// base64url-encoded without padding.
type LinkTokenClaims struct {
	// URL is the control plane's external base URL, e.g. "https://cp.example.com".
	URL string `json:"url"`
	// OrgID is the organization the agent joins.
	OrgID string `json:"orgId"`
	// Secret authenticates the registration; the control plane keeps only its hash.
	Secret string `json:"secret"`
}

// AvailableProject is one element of GET /orgs/{orgId}/liveMigrations/availableProjects:
// a source project with its migration hosts and the deployments they reach.
// livemigrate has one source project per organization: the deployments its
// agents report.
type AvailableProject struct {
	ProjectID      string                `json:"projectId"`
	Name           string                `json:"name"`
	MigrationHosts []string              `json:"migrationHosts"`
	Deployments    []AvailableDeployment `json:"deployments"`
}

// AvailableDeployment is a source deployment a migration host can reach.
type AvailableDeployment struct {
	Name                        string `json:"name"`
	ClusterID                   string `json:"clusterId"`
	AgentVersion                string `json:"agentVersion"`
	DBSizeBytes                 int64  `json:"dbSizeBytes"`
	FeatureCompatibilityVersion string `json:"featureCompatibilityVersion"`
	Managed                     bool   `json:"managed"`
	MongoDBVersion              string `json:"mongoDBVersion"`
	OplogSizeMB                 int64  `json:"oplogSizeMB"`
	Sharded                     bool   `json:"sharded"`
	ShardsSize                  int    `json:"shardsSize"`
	TLSEnabled                  bool   `json:"tlsEnabled"`
	// Unreachable (livemigrate extension) is why the migration host could
	// not reach or describe this deployment; then its other details are
	// unknown, not zero.
	Unreachable string `json:"unreachable,omitempty"`
}

// HostnameSchemaType says how the destination is reached.
type HostnameSchemaType string

// Hostname schema types.
const (
	HostnamePublic      HostnameSchemaType = "PUBLIC"
	HostnamePrivateLink HostnameSchemaType = "PRIVATE_LINK"
	HostnameVPCPeering  HostnameSchemaType = "VPC_PEERING"
)

// MigrationRequest is the body of POST …/liveMigrations and POST …/liveMigrations/validate.
type MigrationRequest struct {
	Source         MigrationSource      `json:"source"`
	Destination    MigrationDestination `json:"destination"`
	MigrationHosts []string             `json:"migrationHosts"`
	// DropDestinationData is write-only: never returned.
	DropDestinationData bool      `json:"dropDestinationData"`
	Sharding            *Sharding `json:"sharding,omitempty"`
	// VerificationMode (livemigrate extension) is how the cutover verifies:
	// "continuous" (default), "full" or "after" (docs/design/commit.md).
	VerificationMode string `json:"verificationMode,omitempty"`
}

// MigrationSource names the source deployment and how to authenticate to it.
type MigrationSource struct {
	ClusterName           string `json:"clusterName"`
	GroupID               string `json:"groupId"`
	ManagedAuthentication bool   `json:"managedAuthentication"`
	SSL                   bool   `json:"ssl"`
	Username              string `json:"username,omitempty"`
	// Password is write-only: never returned by the Admin API.
	Password          string `json:"password,omitempty"`
	CACertificatePath string `json:"caCertificatePath,omitempty"`
}

// MigrationDestination names the destination cluster (registered with
// POST /groups/{groupId}/clusters).
type MigrationDestination struct {
	ClusterName        string             `json:"clusterName"`
	GroupID            string             `json:"groupId"`
	HostnameSchemaType HostnameSchemaType `json:"hostnameSchemaType"`
	PrivateLinkID      string             `json:"privateLinkId,omitempty"`
}

// Sharding configures a replica set → sharded cluster migration.
type Sharding struct {
	CreateSupportingIndexes bool            `json:"createSupportingIndexes"`
	ShardingEntries         []ShardingEntry `json:"shardingEntries"`
}

// ShardingEntry shards one collection on the destination.
type ShardingEntry struct {
	Database        string          `json:"database"`
	Collection      string          `json:"collection"`
	ShardCollection ShardCollection `json:"shardCollection"`
}

// ShardCollection holds the shard key: each element maps one field to 1 or "hashed".
type ShardCollection struct {
	Key []map[string]any `json:"key"`
}

// MigrationStatus is Atlas's live-migration status.
type MigrationStatus string

// Migration statuses. NEW: accepted, not yet picked up by the agent; WORKING:
// connecting, copying, applying, cutting over; EXPIRED: the cutover window lapsed.
const (
	MigrationNew      MigrationStatus = "NEW"
	MigrationWorking  MigrationStatus = "WORKING"
	MigrationFailed   MigrationStatus = "FAILED"
	MigrationComplete MigrationStatus = "COMPLETE"
	MigrationExpired  MigrationStatus = "EXPIRED"
)

// Migration is the response of create, get and list.
type Migration struct {
	ID     string          `json:"_id"`
	Status MigrationStatus `json:"status"`
	// LagTimeSeconds is set only while syncing before cutover, else null.
	LagTimeSeconds  *int64   `json:"lagTimeSeconds"`
	ReadyForCutover bool     `json:"readyForCutover"`
	MigrationHosts  []string `json:"migrationHosts"`
	// HostLost (livemigrate extension: Atlas has no such field, and clients
	// that do not know it ignore it) is set while the migration's host is
	// lost: it missed its heartbeats. Then ReadyForCutover is false,
	// LagTimeSeconds is null (the last lag reported is not a live value) and
	// cutover is refused with 409 MIGRATION_HOST_LOST; a cutover already
	// requested resumes when the host is back.
	HostLost *HostLoss `json:"hostLost,omitempty"`
}

// HostLoss says that, since when and what to do about a lost migration host.
type HostLoss struct {
	Hostname string `json:"hostname"`
	// LastSeenAt is the host's last call to the control plane (heartbeat,
	// poll or progress): nothing was heard from it since.
	LastSeenAt time.Time `json:"lastSeenAt"`
	// DuringCutover is true when the cutover was requested before or while
	// the host was lost: it resumes when the host is back.
	DuringCutover bool `json:"duringCutover"`
	// Detail is a sentence saying what happened and what to do.
	Detail string `json:"detail"`
}

// ValidationStatus is the status of a pre-migration validation.
type ValidationStatus string

// Validation statuses.
const (
	ValidationPending ValidationStatus = "PENDING"
	ValidationSuccess ValidationStatus = "SUCCESS"
	ValidationFailed  ValidationStatus = "FAILED"
)

// Validation is the response of POST …/validate and GET …/validate/{id}.
type Validation struct {
	ID            string           `json:"_id"`
	GroupID       string           `json:"groupId"`
	SourceGroupID string           `json:"sourceGroupId"`
	Status        ValidationStatus `json:"status"`
	ErrorMessage  string           `json:"errorMessage,omitempty"`
}

// ValidationChecks is the response of the x-checks extension: what the agent
// checked, one entry per check.
type ValidationChecks struct {
	ValidationID string            `json:"validationId"`
	Status       ValidationStatus  `json:"status"`
	Checks       []ValidationCheck `json:"checks"`
}

// Page is a list response, shaped like Atlas's paginated lists.
type Page[T any] struct {
	Results    []T `json:"results"`
	TotalCount int `json:"totalCount"`
}

// CutoverWindow is when the migration must be cut over by (x-extend response).
type CutoverWindow struct {
	StartedAt time.Time `json:"startedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// MigrationProgress is the response of the x-progress extension: the Atlas
// Migration plus what the web UI and the CLI show while it runs.
type MigrationProgress struct {
	Migration Migration `json:"migration"`
	// Progress is the agent's latest progress report, absent before the first one.
	Progress *Progress `json:"progress,omitempty"`
	// CutoverWindow is set once the migration first became ready for cutover.
	CutoverWindow      *CutoverWindow `json:"cutoverWindow,omitempty"`
	CutoverRequestedAt *time.Time     `json:"cutoverRequestedAt,omitempty"`
	// Stalled is true while the migration's agent is lost (missed heartbeats;
	// Migration.HostLost says since when and what to do); a stalled
	// migration is not failed and resumes when the agent returns.
	Stalled      bool   `json:"stalled"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	// DestinationClusterName is the destination cluster (of the migration's project).
	DestinationClusterName string `json:"destinationClusterName"`
	// CompletedAt is when the migration ended (COMPLETE, FAILED, EXPIRED).
	CompletedAt *time.Time `json:"completedAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
}

// MigrationReport is the response of the x-report extension.
type MigrationReport struct {
	MigrationID string    `json:"migrationId"`
	CompletedAt time.Time `json:"completedAt"`
	Report
}

// EventType names an entry of a migration's event log.
type EventType string

// Event types. Webhooks are sent for READY_FOR_CUTOVER, EXPIRY_WARNING,
// FAILED, EXPIRED, COMPLETED and MIGRATION_HOST_TAKEOVER_ATTEMPT.
const (
	EventCreated         EventType = "CREATED"
	EventStarted         EventType = "STARTED"
	EventReadyForCutover EventType = "READY_FOR_CUTOVER"
	EventExtended        EventType = "CUTOVER_WINDOW_EXTENDED"
	EventExpiryWarning   EventType = "EXPIRY_WARNING"
	EventExpired         EventType = "EXPIRED"
	EventCutoverStarted  EventType = "CUTOVER_STARTED"
	EventCompleted       EventType = "COMPLETED"
	EventFailed          EventType = "FAILED"
	EventCancelled       EventType = "CANCELLED"
	EventStalled         EventType = "STALLED"
	EventResumed         EventType = "RESUMED"
	// EventTakeoverAttempt: a registration of the migration's host came
	// without the host's agent credential; it got nothing and waits for an
	// operator's approval (also sent to the webhook).
	EventTakeoverAttempt EventType = "MIGRATION_HOST_TAKEOVER_ATTEMPT"
)

// Event is one entry of a migration's event log (x-events) and the body of a webhook.
type Event struct {
	ID          int64     `json:"id"`
	OrgID       string    `json:"orgId"`
	GroupID     string    `json:"groupId"`
	MigrationID string    `json:"migrationId"`
	Type        EventType `json:"type"`
	Message     string    `json:"message"`
	CreatedAt   time.Time `json:"createdAt"`
}

// ServiceAccountRequest is the body of POST /orgs/{orgId}/serviceAccounts
// (Atlas's OrgServiceAccountRequest). Roles are organization roles
// (ORG_OWNER, ORG_MEMBER).
type ServiceAccountRequest struct {
	Name                    string   `json:"name"`
	Description             string   `json:"description"`
	Roles                   []string `json:"roles"`
	SecretExpiresAfterHours int      `json:"secretExpiresAfterHours"`
}

// ServiceAccount is Atlas's OrgServiceAccount. A secret's Secret is in the
// create response only; later responses carry MaskedSecretValue.
type ServiceAccount struct {
	ClientID    string                 `json:"clientId"`
	CreatedAt   time.Time              `json:"createdAt"`
	Description string                 `json:"description"`
	Name        string                 `json:"name"`
	Roles       []string               `json:"roles"`
	Secrets     []ServiceAccountSecret `json:"secrets"`
}

// ServiceAccountSecret is Atlas's ServiceAccountSecret.
type ServiceAccountSecret struct {
	ID                string    `json:"id"`
	CreatedAt         time.Time `json:"createdAt"`
	ExpiresAt         time.Time `json:"expiresAt"`
	Secret            string    `json:"secret,omitempty"`
	MaskedSecretValue string    `json:"maskedSecretValue,omitempty"`
}

// OAuthToken is the response of POST /api/oauth/token (RFC 6749 §5.1).
type OAuthToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// OAuthError is an error of the token endpoints (RFC 6749 §5.2).
type OAuthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}
