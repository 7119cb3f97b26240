package controlplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
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
	acl, _ := json.Marshal(list)
	secret := randomToken(32)
	now := time.Now()
	err = s.store.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM link_tokens WHERE org_id = ?`, orgID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO link_tokens (id, org_id, secret_hash, access_list, created_at) VALUES (?, ?, ?, ?, ?)`,
			newID(now), orgID, tokenHash(secret), string(acl), ms(now))
		return err
	})
	if err != nil {
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
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM link_tokens WHERE org_id = ?`, orgID)
		if err != nil {
			return err
		}
		tokens, _ := res.RowsAffected()
		rows, err := tx.QueryContext(ctx, `SELECT id FROM agents WHERE org_id = ? AND revoked = 0`, orgID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			agents = append(agents, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if tokens == 0 && len(agents) == 0 {
			// Atlas's answer, code included, when the org has no link.
			return errorf(http.StatusNotFound, "UNEXPECTED_ERROR", "Could not find the requested external organization link.")
		}
		for _, id := range agents {
			if err := s.revokeAgent(ctx, tx, id, revokedByLink, now); err != nil {
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
func (s *Server) revokeAgent(ctx context.Context, tx *sql.Tx, agentID, why string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE agents SET revoked = 1, revoked_at = ?, revoked_reason = ? WHERE id = ?`, ms(now), why, agentID); err != nil {
		return err
	}
	msg := "the link token was deleted"
	if why == revokedByOperator {
		msg = "an organization owner revoked the migration host"
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM deployments WHERE agent_id = ?`, agentID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE validations SET status = 'FAILED', error_message = ?, updated_at = ? WHERE agent_id = ? AND status = 'PENDING'`, msg, ms(now), agentID); err != nil {
		return err
	}
	active, err := activeMigrations(ctx, tx, `agent_id = ?`, agentID)
	if err != nil {
		return err
	}
	for _, m := range active {
		if err := s.finish(ctx, tx, m, api.MigrationFailed, msg+": the migration host is revoked", api.EventFailed, now); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE work_items SET acked_at = ? WHERE agent_id = ? AND acked_at IS NULL`, ms(now), agentID)
	return err
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
	var orgName, sourceGroup string
	if err := s.store.db.QueryRowContext(ctx, `SELECT name, source_group_id FROM orgs WHERE id = ?`, orgID).Scan(&orgName, &sourceGroup); err != nil {
		return err
	}
	proj := api.AvailableProject{ProjectID: sourceGroup, Name: orgName + " migration hosts", MigrationHosts: []string{}, Deployments: []api.AvailableDeployment{}}
	rows, err := s.store.db.QueryContext(ctx, `SELECT a.hostname, a.version, d.doc FROM agents a LEFT JOIN deployments d ON d.agent_id = a.id
		WHERE a.org_id = ? AND a.revoked = 0 ORDER BY a.hostname, d.name`, orgID)
	if err != nil {
		return err
	}
	defer rows.Close()
	hosts := map[string]bool{}
	seen := map[string]bool{}
	for rows.Next() {
		var host, version string
		var doc sql.NullString
		if err := rows.Scan(&host, &version, &doc); err != nil {
			return err
		}
		if !hosts[host] {
			hosts[host] = true
			proj.MigrationHosts = append(proj.MigrationHosts, host)
		}
		if !doc.Valid {
			continue
		}
		var d api.Deployment
		if err := json.Unmarshal([]byte(doc.String), &d); err != nil {
			return err
		}
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
	if err := rows.Err(); err != nil {
		return err
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
	rows, err := s.store.db.QueryContext(ctx, `SELECT id, hostname, version, registered_at, last_seen_at, lost FROM agents WHERE org_id = ? AND revoked = 0 ORDER BY hostname`, orgID)
	if err != nil {
		return err
	}
	defer rows.Close()
	page := api.Page[api.Agent]{Results: []api.Agent{}}
	for rows.Next() {
		var a api.Agent
		var reg, seen int64
		if err := rows.Scan(&a.ID, &a.Hostname, &a.Version, &reg, &seen, &a.Lost); err != nil {
			return err
		}
		a.RegisteredAt, a.LastSeenAt = fromMS(reg), fromMS(seen)
		page.Results = append(page.Results, a)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	page.TotalCount = len(page.Results)
	negotiate(w, r, api.MediaType20230101)
	writeJSON(w, http.StatusOK, page)
	return nil
}
