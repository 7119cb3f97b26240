package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// checkedRequest is a migration request resolved against the store.
type checkedRequest struct {
	project api.Project
	agentID string
	host    string
	sealed  []byte
}

// migrationRequestWire is the body of create and validate in both versions.
// 2024-05-30 (LiveMigrationRequest20240530) has dropDestinationData
// (default false); the deprecated 2023-01-01 (LiveMigrationRequest) has
// dropEnabled instead, required. The read-only _id and links of Atlas's
// request schema are accepted and ignored, as Atlas ignores them.
type migrationRequestWire struct {
	api.MigrationRequest
	ID                  json.RawMessage `json:"_id"`
	Links               json.RawMessage `json:"links"`
	DropDestinationData *bool           `json:"dropDestinationData"`
	DropEnabled         *bool           `json:"dropEnabled"`
}

// decodeMigrationRequest decodes and normalizes a create or validate body:
// the version is the one its Content-Type names (default 2024-05-30);
// destination.hostnameSchemaType defaults to PUBLIC as in Atlas (the atlas
// CLI never sets it, the SDK sends it empty).
func decodeMigrationRequest(w http.ResponseWriter, r *http.Request) (api.MigrationRequest, error) {
	var wire migrationRequestWire
	if err := decodeJSON(w, r, maxBodyBytes, &wire); err != nil {
		return api.MigrationRequest{}, err
	}
	req := wire.MigrationRequest
	if requestVersion(r, api.MediaType20240530) == api.MediaType20230101 {
		switch {
		case wire.DropDestinationData != nil:
			return req, badRequest("INVALID_JSON", "unknown field \"dropDestinationData\" in version 2023-01-01: it is dropEnabled there (or send version 2024-05-30)").onField("dropDestinationData")
		case wire.Links != nil:
			return req, badRequest("INVALID_JSON", "unknown field \"links\" in version 2023-01-01").onField("links")
		case wire.DropEnabled == nil:
			return req, badRequest("MISSING_ATTRIBUTE", "dropEnabled is required in version 2023-01-01").onField("dropEnabled")
		}
		req.DropDestinationData = *wire.DropEnabled
	} else {
		if wire.DropEnabled != nil {
			return req, badRequest("INVALID_JSON", "unknown field \"dropEnabled\" in version 2024-05-30: it is dropDestinationData there").onField("dropEnabled")
		}
		req.DropDestinationData = wire.DropDestinationData != nil && *wire.DropDestinationData
	}
	if req.Destination.HostnameSchemaType == "" {
		req.Destination.HostnameSchemaType = api.HostnamePublic
	}
	return req, nil
}

// requireOrgOwnerOf checks that p may read project groupID and owns its
// organization: Atlas asks Organization Owner of create, validate,
// validation status and cutover.
func (s *Server) requireOrgOwnerOf(ctx context.Context, p *principal, groupID string) (api.Project, error) {
	pr, err := s.requireProject(ctx, p, groupID, false)
	if err != nil {
		return pr, err
	}
	if owner, _ := p.orgRole(pr.OrgID); !owner {
		return pr, errForbidden
	}
	return pr, nil
}

// checkRequest validates a migration request for project groupID
// (organization owners only) and resolves its migration host.
func (s *Server) checkRequest(ctx context.Context, w http.ResponseWriter, r *http.Request, p *principal) (api.MigrationRequest, checkedRequest, error) {
	var c checkedRequest
	req, err := decodeMigrationRequest(w, r)
	if err != nil {
		return req, c, err
	}
	groupID := r.PathValue("groupId")
	pr, err := s.requireOrgOwnerOf(ctx, p, groupID)
	if err != nil {
		return req, c, err
	}
	c.project = pr
	switch {
	case req.Source.ClusterName == "":
		return req, c, badRequest("MISSING_ATTRIBUTE", "source.clusterName is required").onField("source.clusterName")
	case req.Source.GroupID == "":
		return req, c, badRequest("MISSING_ATTRIBUTE", "source.groupId is required").onField("source.groupId")
	case req.Destination.ClusterName == "":
		return req, c, badRequest("MISSING_ATTRIBUTE", "destination.clusterName is required").onField("destination.clusterName")
	case req.Destination.GroupID == "":
		return req, c, badRequest("MISSING_ATTRIBUTE", "destination.groupId is required").onField("destination.groupId")
	case req.Destination.GroupID != groupID:
		return req, c, badRequest("INVALID_ATTRIBUTE", "destination.groupId must be the project in the path (%s)", groupID).onField("destination.groupId")
	case len(req.MigrationHosts) != 1:
		return req, c, badRequest("INVALID_ATTRIBUTE", "migrationHosts must name exactly one migration host").onField("migrationHosts")
	}
	switch req.Destination.HostnameSchemaType {
	case api.HostnamePublic, api.HostnamePrivateLink, api.HostnameVPCPeering:
	default:
		return req, c, badRequest("INVALID_ENUM_VALUE", "destination.hostnameSchemaType must be PUBLIC, PRIVATE_LINK or VPC_PEERING").onField("destination.hostnameSchemaType").withParams(string(req.Destination.HostnameSchemaType), "destination.hostnameSchemaType")
	}
	if req.Sharding != nil {
		// Accepting it would promise what nothing does: no part of the
		// migration shards collections or creates their supporting indexes.
		return req, c, badRequest("SHARDING_NOT_SUPPORTED", "sharding is not supported: destinations are migrated as replica sets, so neither shardingEntries nor createSupportingIndexes would be applied. Remove sharding from the request; shard the collections on the destination after the migration if you need to").onField("sharding")
	}
	switch req.VerificationMode {
	case "", "continuous", "full", "after":
	default:
		return req, c, badRequest("INVALID_ENUM_VALUE", "verificationMode must be continuous, full or after")
	}
	if !req.Source.ManagedAuthentication && (req.Source.Username == "") != (req.Source.Password == "") {
		return req, c, badRequest("MISSING_ATTRIBUTE", "source.username and source.password go together").onField("source.password")
	}
	sourceGroup, err := s.store.OrgSourceGroup(ctx, pr.OrgID)
	if err != nil {
		return req, c, err
	}
	if req.Source.GroupID != sourceGroup {
		return req, c, groupNotFound(req.Source.GroupID).onField("source.groupId")
	}
	_, err = s.store.Cluster(ctx, groupID, req.Destination.ClusterName)
	if errors.Is(err, errNotFound) {
		return req, c, clusterNotFound(req.Destination.ClusterName, groupID).onField("destination.clusterName")
	}
	if err != nil {
		return req, c, err
	}
	c.host = req.MigrationHosts[0]
	c.agentID, _, err = s.store.LiveAgent(ctx, pr.OrgID, c.host)
	if errors.Is(err, errNotFound) {
		return req, c, badRequest("MIGRATION_HOST_NOT_FOUND", "no migration host %q is registered in this organization", c.host)
	}
	if err != nil {
		return req, c, err
	}
	deployed, err := s.store.HasDeployment(ctx, c.agentID, req.Source.ClusterName)
	if err != nil {
		return req, c, err
	}
	if !deployed {
		return req, c, badRequest("SOURCE_CLUSTER_NOT_FOUND", "migration host %q reports no deployment named %q", c.host, req.Source.ClusterName)
	}
	if err := s.destinationFree(ctx, s.store, groupID, req.Destination.ClusterName); err != nil {
		return req, c, err
	}
	b, err := json.Marshal(req)
	if err != nil {
		return req, c, err
	}
	c.sealed = s.sealer.seal(b)
	return req, c, nil
}

func (s *Server) destinationFree(ctx context.Context, st *store, groupID, cluster string) error {
	id, err := st.OpenMigrationTo(ctx, groupID, cluster)
	if errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return conflict("DESTINATION_CLUSTER_IN_USE", "live migration %s already targets cluster %q", id, cluster)
}

// POST /api/atlas/v2/groups/{groupId}/liveMigrations/validate
func (s *Server) handleCreateValidation(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	req, c, err := s.checkRequest(ctx, w, r, p)
	if err != nil {
		return err
	}
	now := time.Now()
	v := api.Validation{ID: newID(now), GroupID: c.project.ID, SourceGroupID: req.Source.GroupID, Status: api.ValidationPending}
	err = s.store.Tx(ctx, func(st *store) error {
		if err := st.CreateValidation(ctx, v, c.project.OrgID, c.agentID, req.Destination.ClusterName, c.sealed, now); err != nil {
			return err
		}
		if err := s.planValidationUser(ctx, st, v.ID, v.GroupID, req.Destination.ClusterName, now); err != nil {
			return err
		}
		return st.Enqueue(ctx, c.agentID, api.WorkValidate, v.ID, "", now)
	})
	if err != nil {
		return err
	}
	s.work.notify(c.agentID)
	negotiate(w, r, api.MediaType20240530)
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) loadValidation(ctx context.Context, p *principal, groupID, id string) (api.Validation, api.ValidationChecks, error) {
	var v api.Validation
	var checks api.ValidationChecks
	if _, err := s.requireOrgOwnerOf(ctx, p, groupID); err != nil {
		return v, checks, err
	}
	v, checksJSON, err := s.store.Validation(ctx, groupID, id)
	if errors.Is(err, errNotFound) {
		return v, checks, validationNotFound(id)
	}
	if err != nil {
		return v, checks, err
	}
	checks = api.ValidationChecks{ValidationID: v.ID, Status: v.Status, Checks: []api.ValidationCheck{}}
	if err := json.Unmarshal([]byte(checksJSON), &checks.Checks); err != nil {
		return v, checks, err
	}
	c, ok, err := s.destinationUserCheck(ctx, v.ID)
	if ok {
		checks.Checks = append(checks.Checks, c)
	}
	return v, checks, err
}

// GET /api/atlas/v2/groups/{groupId}/liveMigrations/validate/{validationId}
func (s *Server) handleGetValidation(w http.ResponseWriter, r *http.Request, p *principal) error {
	v, _, err := s.loadValidation(r.Context(), p, r.PathValue("groupId"), r.PathValue("validationId"))
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// GET /api/atlas/v2/groups/{groupId}/liveMigrations/validate/{validationId}/x-checks (extension)
func (s *Server) handleValidationChecks(w http.ResponseWriter, r *http.Request, p *principal) error {
	_, checks, err := s.loadValidation(r.Context(), p, r.PathValue("groupId"), r.PathValue("validationId"))
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, checks)
	return nil
}

// POST /api/atlas/v2/groups/{groupId}/liveMigrations
func (s *Server) handleCreateMigration(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	req, c, err := s.checkRequest(ctx, w, r, p)
	if err != nil {
		return err
	}
	now := time.Now()
	m := &migration{id: newID(now), orgID: c.project.OrgID, groupID: c.project.ID, sourceGroupID: req.Source.GroupID, agentID: c.agentID,
		host: c.host, destination: req.Destination.ClusterName, status: api.MigrationNew, createdAt: ms(now), updatedAt: ms(now)}
	err = s.store.Tx(ctx, func(st *store) error {
		err := st.CreateMigration(ctx, m, c.sealed)
		if errors.Is(err, errExists) {
			return s.destinationFree(ctx, st, m.groupID, m.destination)
		}
		if err != nil {
			return err
		}
		if err := s.addEvent(ctx, st, m, api.EventCreated, "migration created by "+p.name+" on migration host "+m.host, now); err != nil {
			return err
		}
		if err := s.planMigrationUser(ctx, st, m, now); err != nil {
			return err
		}
		return st.Enqueue(ctx, m.agentID, api.WorkStart, "", m.id, now)
	})
	if err != nil {
		return err
	}
	s.metrics.migrationsCreated.Inc()
	s.work.notify(c.agentID)
	negotiate(w, r, api.MediaType20240530)
	writeJSON(w, http.StatusCreated, m.api())
	return nil
}

// migrationFor loads migration id of project groupID after checking p's access.
func (s *Server) migrationFor(ctx context.Context, p *principal, groupID, id string, needOwner bool) (*migration, error) {
	if _, err := s.requireProject(ctx, p, groupID, needOwner); err != nil {
		return nil, err
	}
	m, err := s.store.Migration(ctx, id)
	if errors.Is(err, errNotFound) || (err == nil && m.groupID != groupID) {
		return nil, migrationNotFound(id)
	}
	return m, err
}

// GET /api/atlas/v2/groups/{groupId}/liveMigrations/{liveMigrationId}
func (s *Server) handleGetMigration(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.migrationFor(r.Context(), p, r.PathValue("groupId"), r.PathValue("liveMigrationId"), false)
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, m.api())
	return nil
}

// GET /api/atlas/v2/groups/{groupId}/liveMigrations (extension: list, newest first)
func (s *Server) handleListMigrations(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	pr, err := s.requireProject(ctx, p, r.PathValue("groupId"), false)
	if err != nil {
		return err
	}
	migs, err := s.store.ProjectMigrations(ctx, pr.ID)
	if err != nil {
		return err
	}
	page := api.Page[api.Migration]{Results: []api.Migration{}}
	for _, m := range migs {
		page.Results = append(page.Results, m.api())
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}

// PUT /api/atlas/v2/groups/{groupId}/liveMigrations/{liveMigrationId}/cutover:
// the operator confirms writes to the source are stopped; the agent drains,
// finalizes and reports. 202, empty body; repeating it is harmless.
func (s *Server) handleCutover(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	groupID, id := r.PathValue("groupId"), r.PathValue("liveMigrationId")
	if _, err := s.requireOrgOwnerOf(ctx, p, groupID); err != nil {
		return err
	}
	if _, err := s.migrationFor(ctx, p, groupID, id, true); err != nil {
		return err
	}
	var agentID string
	err := s.store.Tx(ctx, func(st *store) error {
		m, err := st.Migration(ctx, id)
		if err != nil {
			return err
		}
		agentID = m.agentID
		switch {
		case m.status == api.MigrationWorking && m.cutoverRequested.Valid:
			return nil
		case m.status != api.MigrationWorking:
			return conflict("LIVE_MIGRATION_NOT_WORKING", "live migration %s is %s", id, m.status)
		case m.lostHost():
			return errHostLost(m, "cut over")
		case !m.ready:
			return conflict("LIVE_MIGRATION_NOT_READY_FOR_CUTOVER", "live migration %s is not ready for cutover yet", id)
		}
		now := time.Now()
		if err := st.StartCutover(ctx, id, now); err != nil {
			return err
		}
		if err := s.addEvent(ctx, st, m, api.EventCutoverStarted, "cutover started by "+p.name+": writes to the source confirmed stopped", now); err != nil {
			return err
		}
		return st.Enqueue(ctx, m.agentID, api.WorkCutover, "", id, now)
	})
	if err != nil {
		return err
	}
	s.work.notify(agentID)
	s.kickTimers()
	negotiate(w, r, api.MediaType20230101)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// POST /api/atlas/v2/groups/{groupId}/liveMigrations/{liveMigrationId}/x-cancel
// (extension): stops a NEW or WORKING migration before cutover; it becomes
// FAILED with errorMessage "cancelled by <user>". 202 with the migration.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	groupID, id := r.PathValue("groupId"), r.PathValue("liveMigrationId")
	if _, err := s.migrationFor(ctx, p, groupID, id, true); err != nil {
		return err
	}
	var m *migration
	err := s.store.Tx(ctx, func(st *store) error {
		var err error
		if m, err = st.Migration(ctx, id); err != nil {
			return err
		}
		switch {
		case !m.active():
			return conflict("LIVE_MIGRATION_NOT_WORKING", "live migration %s is %s", id, m.status)
		case m.cutoverRequested.Valid:
			return conflict("LIVE_MIGRATION_CUTTING_OVER", "live migration %s is cutting over and cannot be cancelled", id)
		}
		now := time.Now()
		if err := s.finish(ctx, st, m, api.MigrationFailed, "cancelled by "+p.name, api.EventCancelled, now); err != nil {
			return err
		}
		return st.Enqueue(ctx, m.agentID, api.WorkCancel, "", id, now)
	})
	if err != nil {
		return err
	}
	s.work.notify(m.agentID)
	s.kickTimers()
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusAccepted, m.api())
	return nil
}

// POST /api/atlas/v2/groups/{groupId}/liveMigrations/{liveMigrationId}/x-extend
// (extension): adds Timing.Extension (24 h) to the cutover window.
func (s *Server) handleExtend(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	groupID, id := r.PathValue("groupId"), r.PathValue("liveMigrationId")
	if _, err := s.migrationFor(ctx, p, groupID, id, true); err != nil {
		return err
	}
	win, err := s.extend(ctx, id, p.name)
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, win)
	return nil
}

func (s *Server) extend(ctx context.Context, id, by string) (api.CutoverWindow, error) {
	var win api.CutoverWindow
	err := s.store.Tx(ctx, func(st *store) error {
		m, err := st.Migration(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case m.status != api.MigrationWorking:
			return conflict("LIVE_MIGRATION_NOT_WORKING", "live migration %s is %s", id, m.status)
		case !m.expiresAt.Valid:
			return conflict("CUTOVER_WINDOW_NOT_STARTED", "live migration %s has no cutover window yet: it starts when the migration is first ready", id)
		case m.cutoverRequested.Valid:
			return conflict("LIVE_MIGRATION_CUTTING_OVER", "live migration %s is cutting over", id)
		}
		now := time.Now()
		expires := fromMS(m.expiresAt.Int64).Add(s.timing.Extension)
		warned := expires.Sub(now) <= s.timing.ExpiryWarning && m.expiryWarned
		if err := st.ExtendWindow(ctx, id, expires, warned, now); err != nil {
			return err
		}
		win = api.CutoverWindow{StartedAt: fromMS(m.windowStarted.Int64), ExpiresAt: expires}
		return s.addEvent(ctx, st, m, api.EventExtended, "cutover window extended by "+by+" until "+expires.Format(time.RFC3339), now)
	})
	if err == nil {
		s.kickTimers()
	}
	return win, err
}

// GET …/{liveMigrationId}/x-report (extension): the final report, 404 until COMPLETE.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.migrationFor(r.Context(), p, r.PathValue("groupId"), r.PathValue("liveMigrationId"), false)
	if err != nil {
		return err
	}
	if m.status != api.MigrationComplete || !m.report.Valid {
		return notFound("report of live migration", m.id)
	}
	rep := api.MigrationReport{MigrationID: m.id, CompletedAt: fromMS(m.completedAt.Int64)}
	if err := json.Unmarshal([]byte(m.report.String), &rep.Report); err != nil {
		return err
	}
	// Downtime is the control plane's own record: from the operator's
	// confirmation (PUT cutover) to completion, whatever happened between
	// (a lost host, a restart); the agent's figure starts when it saw the
	// directive, which can be much later.
	if m.cutoverRequested.Valid && m.completedAt.Valid {
		rep.DowntimeSeconds = float64(m.completedAt.Int64-m.cutoverRequested.Int64) / 1000
	}
	// What the engine's parts leave of that: the directive's and the
	// report's way, and the engine's steps not itemised.
	if d := rep.Downtime; d != nil {
		d.OtherSeconds = max(0, rep.DowntimeSeconds-d.PartsSeconds())
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// GET …/{liveMigrationId}/x-events (extension): the event log, oldest first.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.migrationFor(r.Context(), p, r.PathValue("groupId"), r.PathValue("liveMigrationId"), false)
	if err != nil {
		return err
	}
	events, err := s.listEvents(r.Context(), m.id)
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, api.Page[api.Event]{Results: events, TotalCount: len(events)})
	return nil
}

// GET …/{liveMigrationId}/x-progress (extension): the migration plus the
// agent's latest progress, cutover window and stall state.
func (s *Server) handleProgress(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.migrationFor(r.Context(), p, r.PathValue("groupId"), r.PathValue("liveMigrationId"), false)
	if err != nil {
		return err
	}
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, m.progressView())
	return nil
}
