package cli

import (
	"encoding/json"

	"github.com/livemigrate/livemigrate/internal/api"
)

// Templates (-o go-template, go-template-file) run over the Atlas Go SDK's
// model of each response, as the atlas CLI's do, so a template written for
// `atlas liveMigrations` works unchanged: {{.Id}} {{.Status}}
// {{.LagTimeSeconds}}, pointers where the SDK has pointers (a missing lag
// prints <nil>). The types below mirror the SDK's models field for field
// (go.mongodb.org/atlas-sdk/v20250312006/admin; atlasmodel_test.go holds
// them to it).

// LiveMigrationResponse mirrors admin.LiveMigrationResponse.
type LiveMigrationResponse struct {
	Id              *string   `json:"_id,omitempty"`
	LagTimeSeconds  *int64    `json:"lagTimeSeconds,omitempty"`
	MigrationHosts  *[]string `json:"migrationHosts,omitempty"`
	ReadyForCutover *bool     `json:"readyForCutover,omitempty"`
	Status          *string   `json:"status,omitempty"`
}

// LiveImportValidation mirrors admin.LiveImportValidation.
type LiveImportValidation struct {
	Id            *string `json:"_id,omitempty"`
	ErrorMessage  *string `json:"errorMessage,omitempty"`
	GroupId       *string `json:"groupId,omitempty"`
	SourceGroupId *string `json:"sourceGroupId,omitempty"`
	Status        *string `json:"status,omitempty"`
}

// TargetOrg mirrors admin.TargetOrg.
type TargetOrg struct {
	LinkToken string `json:"linkToken"`
}

// LiveImportAvailableProject mirrors admin.LiveImportAvailableProject.
type LiveImportAvailableProject struct {
	Deployments    *[]AvailableClustersDeployment `json:"deployments,omitempty"`
	MigrationHosts *[]string                      `json:"migrationHosts,omitempty"`
	Name           string                         `json:"name"`
	ProjectId      string                         `json:"projectId"`
}

// AvailableClustersDeployment mirrors admin.AvailableClustersDeployment.
type AvailableClustersDeployment struct {
	AgentVersion                *string `json:"agentVersion,omitempty"`
	ClusterId                   *string `json:"clusterId,omitempty"`
	DbSizeBytes                 *int64  `json:"dbSizeBytes,omitempty"`
	FeatureCompatibilityVersion string  `json:"featureCompatibilityVersion"`
	Managed                     bool    `json:"managed"`
	MongoDBVersion              string  `json:"mongoDBVersion"`
	Name                        string  `json:"name"`
	OplogSizeMB                 *int    `json:"oplogSizeMB,omitempty"`
	Sharded                     bool    `json:"sharded"`
	ShardsSize                  *int    `json:"shardsSize,omitempty"`
	TlsEnabled                  bool    `json:"tlsEnabled"`
}

// MigrationList is the list extension in the same style: {{range .Results}}{{.Id}}{{end}}.
type MigrationList struct {
	Results    []LiveMigrationResponse `json:"results"`
	TotalCount *int                    `json:"totalCount,omitempty"`
}

// AtlasModel returns the SDK-shaped model of a response for templates;
// values Atlas has no model for are returned as they are.
func AtlasModel(v any) any {
	switch v.(type) {
	case api.Migration:
		return remodel[LiveMigrationResponse](v)
	case api.Validation:
		return remodel[LiveImportValidation](v)
	case api.LinkToken:
		return remodel[TargetOrg](v)
	case []api.AvailableProject:
		return remodel[[]LiveImportAvailableProject](v)
	case api.Page[api.Migration]:
		return remodel[MigrationList](v)
	}
	return v
}

// remodel converts v through its JSON form, which is Atlas's.
func remodel[T any](v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}
