package api

import "time"

// AgentRegisterRequest is the body of POST /api/agent/v1/register.
type AgentRegisterRequest struct {
	LinkToken string `json:"linkToken"`
	Hostname  string `json:"hostname"`
	Version   string `json:"version"`
	// AgentSecret is the credential this host got at an earlier
	// registration (or the one of its pending registration), if it kept
	// one. A hostname that has a live agent is handed over only to the
	// holder of that agent's credential or after an operator's approval.
	AgentSecret string `json:"agentSecret,omitempty"`
}

// AgentRegistrationStatus says whether a registration made an active agent.
type AgentRegistrationStatus string

// Registration statuses.
const (
	// RegistrationActive: the agent may work; AgentSecret authenticates it.
	RegistrationActive AgentRegistrationStatus = "ACTIVE"
	// RegistrationPending: the hostname has a live agent (or an operator
	// revoked it) and the request did not carry its credential: an
	// organization owner must approve registration RegistrationID. Register
	// again with AgentSecret (the pending credential) to learn the outcome;
	// the agent gets no work and no secrets meanwhile.
	RegistrationPending AgentRegistrationStatus = "PENDING_APPROVAL"
)

// AgentRegistration is the response of register. AgentSecret authenticates
// every later call ("Authorization: Bearer <AgentSecret>"); it is shown once.
type AgentRegistration struct {
	// Status is ACTIVE (200) or PENDING_APPROVAL (202; then AgentID is
	// empty and RegistrationID, Detail and RetryAfterSeconds are set).
	Status         AgentRegistrationStatus `json:"status"`
	RegistrationID string                  `json:"registrationId,omitempty"`
	Detail         string                  `json:"detail,omitempty"`
	// RetryAfterSeconds is how long a pending agent waits before asking again.
	RetryAfterSeconds int    `json:"retryAfterSeconds,omitempty"`
	AgentID           string `json:"agentId,omitempty"`
	// AgentSecret is the agent's own credential: keep it (it is stored
	// only hashed) and send it with every call and every later registration.
	AgentSecret string `json:"agentSecret"`
	OrgID       string `json:"orgId"`
	// HeartbeatIntervalSeconds: send a heartbeat at least this often; missing
	// three in a row marks the agent lost.
	HeartbeatIntervalSeconds int `json:"heartbeatIntervalSeconds"`
	// ProgressIntervalSeconds: post progress of a running migration at least this often.
	ProgressIntervalSeconds int `json:"progressIntervalSeconds"`
	// MaxWaitSeconds is the longest long-poll the server holds.
	MaxWaitSeconds int `json:"maxWaitSeconds"`
}

// AgentHeartbeat is the body of POST /api/agent/v1/heartbeat (may be empty).
type AgentHeartbeat struct {
	// Migrations lists the IDs of migrations the agent is running.
	Migrations []string `json:"migrations,omitempty"`
}

// Deployment is a source deployment the agent can reach.
type Deployment struct {
	Name                        string `json:"name"`
	MongoDBVersion              string `json:"mongoDBVersion"`
	FeatureCompatibilityVersion string `json:"featureCompatibilityVersion"`
	Sharded                     bool   `json:"sharded"`
	ShardsSize                  int    `json:"shardsSize"`
	TLSEnabled                  bool   `json:"tlsEnabled"`
	DBSizeBytes                 int64  `json:"dbSizeBytes"`
	OplogSizeMB                 int64  `json:"oplogSizeMB"`
	Managed                     bool   `json:"managed"`
	// Unreachable is why the agent could not reach or describe the
	// deployment (credentials redacted); empty when it could. The other
	// details are then unknown, not zero.
	Unreachable string `json:"unreachable,omitempty"`
}

// DeploymentsReport is the body of PUT /api/agent/v1/deployments; it replaces
// the agent's previous list.
type DeploymentsReport struct {
	Deployments []Deployment `json:"deployments"`
}

// WorkKind is what a work item asks the agent to do.
type WorkKind string

// Work kinds.
const (
	// WorkValidate: run the pre-migration checks of Spec; post a ValidationResult.
	WorkValidate WorkKind = "validate"
	// WorkStart: start (or resume) migration MigrationID with Spec; post Progress.
	WorkStart WorkKind = "start"
	// WorkCutover: the operator confirmed writes to the source are stopped:
	// drain, restore indexes, verify, finalize, then post the Report.
	WorkCutover WorkKind = "cutover"
	// WorkCancel: stop migration MigrationID; leave the destination as it is.
	WorkCancel WorkKind = "cancel"
	// WorkExpire: the cutover window lapsed: stop syncing migration MigrationID.
	WorkExpire WorkKind = "expire"
)

// WorkItems is the response of GET /api/agent/v1/work.
type WorkItems struct {
	Items []WorkItem `json:"items"`
}

// WorkItem is one instruction to the agent. ID is unique and stable across
// redeliveries.
type WorkItem struct {
	ID           string   `json:"id"`
	Kind         WorkKind `json:"kind"`
	ValidationID string   `json:"validationId,omitempty"`
	MigrationID  string   `json:"migrationId,omitempty"`
	// Spec is set for validate and start.
	Spec *MigrationSpec `json:"spec,omitempty"`
}

// MigrationSpec is everything the agent needs to validate or run a migration,
// secrets included (decrypted only for the agent, only over this call).
type MigrationSpec struct {
	// Request is the operator's request, including the source password and
	// dropDestinationData.
	Request     MigrationRequest   `json:"request"`
	Destination DestinationCluster `json:"destination"`
}

// DestinationCluster is how the agent connects to the destination.
type DestinationCluster struct {
	Name             string `json:"name"`
	ConnectionString string `json:"connectionString"`
	Username         string `json:"username,omitempty"`
	Password         string `json:"password,omitempty"`
}

// CheckStatus is the outcome of one validation check.
type CheckStatus string

// Check statuses.
const (
	CheckPassed  CheckStatus = "PASSED"
	CheckFailed  CheckStatus = "FAILED"
	CheckWarning CheckStatus = "WARNING"
	CheckSkipped CheckStatus = "SKIPPED"
)

// ValidationCheck is one check the agent ran.
type ValidationCheck struct {
	Name    string      `json:"name"`
	Status  CheckStatus `json:"status"`
	Message string      `json:"message,omitempty"`
}

// ValidationResult is the body of POST /api/agent/v1/validations/{id}/result.
// Status must be SUCCESS or FAILED.
type ValidationResult struct {
	Status       ValidationStatus  `json:"status"`
	ErrorMessage string            `json:"errorMessage,omitempty"`
	Checks       []ValidationCheck `json:"checks"`
}

// EngineState is the sync engine's state, as in mongosync.
type EngineState string

// Engine states. FAILED is terminal: the migration becomes FAILED with Progress.Error.
const (
	StateIdle       EngineState = "IDLE"
	StateRunning    EngineState = "RUNNING"
	StatePaused     EngineState = "PAUSED"
	StateCommitting EngineState = "COMMITTING"
	StateCommitted  EngineState = "COMMITTED"
	StateFailed     EngineState = "FAILED"
)

// Progress is the body of POST /api/agent/v1/migrations/{id}/progress. The
// first progress moves the migration to WORKING; CanCommit makes it ready for
// cutover (and starts the cutover window the first time).
type Progress struct {
	// Phase is the engine's phase, e.g. "collection copy", "change event application".
	Phase string      `json:"phase"`
	State EngineState `json:"state"`
	// Info is a human-readable line about what happens now.
	Info                    string              `json:"info,omitempty"`
	LagTimeSeconds          int64               `json:"lagTimeSeconds"`
	CanCommit               bool                `json:"canCommit"`
	CanWrite                bool                `json:"canWrite"`
	TotalEventsApplied      int64               `json:"totalEventsApplied"`
	EstimatedTotalBytes     int64               `json:"estimatedTotalBytes"`
	EstimatedCopiedBytes    int64               `json:"estimatedCopiedBytes"`
	EstimatedTotalDocuments int64               `json:"estimatedTotalDocuments"`
	CopiedDocuments         int64               `json:"copiedDocuments"`
	Namespaces              []NamespaceProgress `json:"namespaces,omitempty"`
	// BackgroundVerification is the continuous verifier's coverage so far
	// (livemigrate extension); absent before change application and in
	// the verification modes full and after.
	BackgroundVerification *BackgroundVerification `json:"backgroundVerification,omitempty"`
	Warnings               []string                `json:"warnings,omitempty"`
	// Error is set with State FAILED.
	Error string `json:"error,omitempty"`
	// ReportedAt is set by the control plane when it stores the report.
	ReportedAt time.Time `json:"reportedAt,omitzero"`
}

// NamespaceProgress is the copy progress of one collection.
type NamespaceProgress struct {
	Namespace          string `json:"namespace"`
	Phase              string `json:"phase"`
	EstimatedBytes     int64  `json:"estimatedBytes"`
	CopiedBytes        int64  `json:"copiedBytes"`
	EstimatedDocuments int64  `json:"estimatedDocuments"`
	CopiedDocuments    int64  `json:"copiedDocuments"`
}

// Directive is what the control plane wants the agent to do with a migration.
type Directive string

// Directives.
const (
	DirectiveContinue Directive = "CONTINUE"
	DirectiveCutover  Directive = "CUTOVER"
	DirectiveStop     Directive = "STOP"
)

// ProgressAck is the response to a progress report.
type ProgressAck struct {
	Status    MigrationStatus `json:"status"`
	Directive Directive       `json:"directive"`
}

// Report is the body of POST /api/agent/v1/migrations/{id}/report, sent once
// after cutover finalized. It is stored and shown by x-report.
type Report struct {
	ChangesSynced     int64   `json:"changesSynced"`
	DowntimeSeconds   float64 `json:"downtimeSeconds"`
	DurationSeconds   float64 `json:"durationSeconds"`
	BytesCopied       int64   `json:"bytesCopied"`
	CollectionsCopied int     `json:"collectionsCopied"`
	// Downtime itemises the downtime and says what verification did in it
	// (livemigrate extension); absent in reports stored without it.
	Downtime     *Downtime    `json:"downtime,omitempty"`
	Verification Verification `json:"verification"`
}

// Downtime is the downtime's parts, as the engine measured them, and what
// the commit's verification compared, found and repaired.
type Downtime struct {
	// VerificationMode is the mode the commit ran with: continuous, full or after.
	VerificationMode string `json:"verificationMode"`
	// EngineSeconds is the engine's own downtime: from the commit request
	// it received to the destination being writable.
	EngineSeconds float64 `json:"engineSeconds"`
	// The parts of EngineSeconds: reading the source's newest position,
	// applying the changes up to it, making unique indexes unique again,
	// and verifying (in mode after, VerificationSeconds is spent after the
	// destination became writable and is no part of the downtime).
	CommitPointSeconds  float64 `json:"commitPointSeconds"`
	DrainSeconds        float64 `json:"drainSeconds"`
	IndexRestoreSeconds float64 `json:"indexRestoreSeconds"`
	VerificationSeconds float64 `json:"verificationSeconds"`
	// OtherSeconds is the rest of Report.DowntimeSeconds: the cutover
	// reaching the migration host, the engine's steps not itemised, the
	// report reaching the control plane. The control plane sets it.
	OtherSeconds float64 `json:"otherSeconds"`
	// DocumentsRechecked counts the documents compared at commit: every one
	// in mode full; in mode continuous those changed since their background
	// comparison (the namespaces compared in full are listed in Coverage).
	DocumentsRechecked int64 `json:"documentsRechecked"`
	// FoundBeforeRepair is what verification found different before
	// repairing it: zero when change application was exact.
	FoundBeforeRepair DifferenceCounts `json:"foundBeforeRepair"`
	// Repaired counts documents re-copied from the source or deleted.
	Repaired int64    `json:"repaired"`
	Coverage Coverage `json:"coverage"`
	// Background is the continuous verifier's share (mode continuous).
	Background *BackgroundVerification `json:"background,omitempty"`
}

// PartsSeconds is the sum of the parts spent inside the downtime.
func (d *Downtime) PartsSeconds() float64 {
	s := d.CommitPointSeconds + d.DrainSeconds + d.IndexRestoreSeconds
	if d.VerificationMode != "after" {
		s += d.VerificationSeconds
	}
	return s
}

// DifferenceCounts counts documents by kind of difference.
type DifferenceCounts struct {
	Missing   int64 `json:"missing"`
	Extra     int64 `json:"extra"`
	Differing int64 `json:"differing"`
}

// Coverage says how every namespace was compared after its last change.
type Coverage struct {
	// Complete: every document of every namespace was compared after its
	// last change.
	Complete   bool `json:"complete"`
	Namespaces int  `json:"namespaces"`
	// NamespacesByPass counts namespaces whose background pass held: only
	// their documents changed since were compared at commit.
	NamespacesByPass int `json:"namespacesByPass"`
	// ComparedInFull lists the namespaces compared in full at commit, and why.
	ComparedInFull []NamespaceReason `json:"comparedInFull,omitempty"`
}

// NamespaceReason is a namespace and why it was compared as it was.
type NamespaceReason struct {
	Namespace string `json:"namespace"`
	Reason    string `json:"reason"`
}

// BackgroundVerification is the continuous verifier's work while syncing.
type BackgroundVerification struct {
	// NamespacesVerified counts namespaces with a finished pass that still
	// holds, of Namespaces known to the verifier.
	NamespacesVerified int `json:"namespacesVerified"`
	Namespaces         int `json:"namespaces"`
	// DocumentsCompared counts source documents its passes compared;
	// Passes the namespace passes finished, PassesInvalidated those voided
	// (a rename, a drop, a source restart, too many changes).
	DocumentsCompared int64 `json:"documentsCompared"`
	Passes            int   `json:"passes"`
	PassesInvalidated int   `json:"passesInvalidated"`
	// DocumentsRechecked counts changed documents it compared again;
	// DocumentsToRecheck those changed since their comparison (progress only).
	DocumentsRechecked int64 `json:"documentsRechecked"`
	DocumentsToRecheck int64 `json:"documentsToRecheck,omitempty"`
	// Pauses counts the times it stopped for lag, PausedSeconds how long;
	// SlowedSeconds is the time it slept to go slower while the lag was raised.
	Pauses        int     `json:"pauses"`
	PausedSeconds float64 `json:"pausedSeconds"`
	SlowedSeconds float64 `json:"slowedSeconds"`
	// LastError is the last error that interrupted it (it retries).
	LastError string `json:"lastError,omitempty"`
}

// VerificationStatus is the overall verification outcome.
type VerificationStatus string

// Verification statuses.
const (
	VerificationPassed  VerificationStatus = "PASSED"
	VerificationFailed  VerificationStatus = "FAILED"
	VerificationSkipped VerificationStatus = "SKIPPED"
)

// Verification is the result of comparing source and destination at cutover.
type Verification struct {
	Status     VerificationStatus      `json:"status"`
	Message    string                  `json:"message,omitempty"`
	Namespaces []NamespaceVerification `json:"namespaces"`
}

// NamespaceVerification compares one collection; Examples are `_id`s (as
// extended JSON strings) of documents that differ.
type NamespaceVerification struct {
	Namespace string `json:"namespace"`
	Matched   int64  `json:"matched"`
	Missing   int64  `json:"missing"`
	Extra     int64  `json:"extra"`
	Differing int64  `json:"differing"`
	// Repaired counts documents re-copied from the source or removed at
	// commit to make the namespace equal (livemigrate extension).
	Repaired int64    `json:"repaired,omitempty"`
	Examples []string `json:"examples,omitempty"`
}
