package controlplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
)

// encodeLinkToken makes the self-contained token string: base64url (no
// padding) of the JSON of the claims.
func encodeLinkToken(c api.LinkTokenClaims) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxLinkTokenLen bounds what decodeLinkToken reads (a real token is ~150
// characters; the URL is at most a few hundred).
const maxLinkTokenLen = 4096

// decodeLinkToken parses a link token; the error says what is wrong with it
// (never its content).
func decodeLinkToken(tok string) (api.LinkTokenClaims, error) {
	var c api.LinkTokenClaims
	if tok == "" {
		return c, errors.New("link token is empty")
	}
	if len(tok) > maxLinkTokenLen {
		return c, fmt.Errorf("link token is %d bytes, longer than %d", len(tok), maxLinkTokenLen)
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return c, errors.New("link token is not base64url without padding")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return api.LinkTokenClaims{}, errors.New("link token does not hold one JSON object of url, orgId and secret")
	}
	switch {
	case c.OrgID == "":
		return c, errors.New("link token has no orgId")
	case c.Secret == "":
		return c, errors.New("link token has no secret")
	}
	return c, nil
}

// parseAccessList accepts IP addresses and CIDR prefixes.
func parseAccessList(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, badRequest("INVALID_IP_ADDRESS_OR_CIDR", "accessListIps: %q is not an IP address or CIDR block", e)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// POST /api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens (organization
// owners). A new token replaces the org's previous one; agents already
// registered stay registered.
func (s *Server) handleCreateLinkToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	var req api.LinkTokenRequest
	if err := decodeOptionalJSON(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	prefixes, err := parseAccessList(req.AccessListIPs)
	if err != nil {
		return err
	}
	list := make([]string, len(prefixes))
	for i, p := range prefixes {
		list[i] = p.String()
	}
	secret := randomToken(32)
	now := time.Now()
	if err := s.store.ReplaceLinkToken(ctx, orgID, newID(now), tokenHash(secret), list, now); err != nil {
		return err
	}
	s.logger.Info("link token created", "org_id", orgID, "access_list", list)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusCreated, api.LinkToken{LinkToken: encodeLinkToken(api.LinkTokenClaims{URL: s.opts.ExternalURL, OrgID: orgID, Secret: secret})})
	return nil
}

// DELETE /api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens (organization
// owners): removes the link token, revokes every agent of the org, fails
// their unfinished migrations and validations.
func (s *Server) handleDeleteLinkToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil {
		return err
	}
	var agents []string
	now := time.Now()
	err := s.store.Tx(ctx, func(st *store) error {
		token, err := st.DeleteLinkToken(ctx, orgID)
		if err != nil {
			return err
		}
		if agents, err = st.LiveAgentIDs(ctx, orgID); err != nil {
			return err
		}
		if !token && len(agents) == 0 {
			// Atlas's answer, code included, when the org has no link.
			return errorf(http.StatusNotFound, "UNEXPECTED_ERROR", "Could not find the requested external organization link.")
		}
		for _, id := range agents {
			if err := s.revokeAgent(ctx, st, id, revokedByLink, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range agents {
		s.work.notify(id)
	}
	s.kickWebhooks()
	s.logger.Info("link token deleted", "org_id", orgID, "agents_revoked", len(agents))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeAgent ends agent agentID's credential (why: revokedByLink or
// revokedByOperator) and fails its unfinished validations and migrations.
func (s *Server) revokeAgent(ctx context.Context, st *store, agentID, why string, now time.Time) error {
	if err := st.RevokeAgent(ctx, agentID, why, now); err != nil {
		return err
	}
	msg := "the link token was deleted"
	if why == revokedByOperator {
		msg = "an organization owner revoked the migration host"
	}
	if err := st.DeleteDeployments(ctx, agentID); err != nil {
		return err
	}
	if err := st.FailPendingValidations(ctx, agentID, msg, now); err != nil {
		return err
	}
	active, err := st.AgentOpenMigrations(ctx, agentID)
	if err != nil {
		return err
	}
	for _, m := range active {
		if err := s.finish(ctx, st, m, api.MigrationFailed, msg+": the migration host is revoked", api.EventFailed, now); err != nil {
			return err
		}
	}
	return st.AckAllWork(ctx, agentID, now)
}

// deploymentClusterID derives a stable 24-hex ID for a source deployment.
func deploymentClusterID(orgID, name string) string {
	h := sha256.Sum256([]byte(orgID + "\x00" + name))
	return hex.EncodeToString(h[:12])
}

// GET /api/atlas/v2/orgs/{orgId}/liveMigrations/availableProjects (organization
// owners and project owners in the org). livemigrate has one source project
// per organization holding the deployments every live agent reports.
func (s *Server) handleAvailableProjects(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, true); err != nil { // Organization Owner, as in Atlas
		return err
	}
	org, err := s.store.Org(ctx, orgID)
	if err != nil {
		return err
	}
	sourceGroup, err := s.store.OrgSourceGroup(ctx, orgID)
	if err != nil {
		return err
	}
	proj := api.AvailableProject{ProjectID: sourceGroup, Name: org.Name + " migration hosts", MigrationHosts: []string{}, Deployments: []api.AvailableDeployment{}}
	hostDeps, err := s.store.HostDeployments(ctx, orgID)
	if err != nil {
		return err
	}
	hosts := map[string]bool{}
	seen := map[string]bool{}
	for _, hd := range hostDeps {
		host, version := hd.host, hd.version
		if !hosts[host] {
			hosts[host] = true
			proj.MigrationHosts = append(proj.MigrationHosts, host)
		}
		if hd.deployment == nil {
			continue
		}
		d := *hd.deployment
		if seen[d.Name] {
			continue
		}
		seen[d.Name] = true
		proj.Deployments = append(proj.Deployments, api.AvailableDeployment{
			Name: d.Name, ClusterID: deploymentClusterID(orgID, d.Name), AgentVersion: version, DBSizeBytes: d.DBSizeBytes,
			FeatureCompatibilityVersion: d.FeatureCompatibilityVersion, Managed: d.Managed, MongoDBVersion: d.MongoDBVersion,
			OplogSizeMB: d.OplogSizeMB, Sharded: d.Sharded, ShardsSize: d.ShardsSize, TLSEnabled: d.TLSEnabled,
			Unreachable: d.Unreachable,
		})
	}
	sort.Slice(proj.Deployments, func(i, j int) bool { return proj.Deployments[i].Name < proj.Deployments[j].Name })
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, []api.AvailableProject{proj})
	return nil
}

// GET /api/atlas/v2/orgs/{orgId}/liveMigrations/x-agents (extension; any role in the org).
func (s *Server) handleListAgents(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	orgID := r.PathValue("orgId")
	if err := s.requireOrg(ctx, p, orgID, false); err != nil {
		return err
	}
	agents, err := s.store.Agents(ctx, orgID)
	if err != nil {
		return err
	}
	page := api.Page[api.Agent]{Results: []api.Agent{}}
	page.Results = append(page.Results, agents...)
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}
