-- Per-agent credentials. agents.secret_hash is the agent's live credential;
-- a credential an approved registration replaced is kept (hash only) so its
-- holder is told what happened. Registrations that would take over a live
-- hostname (or one an operator revoked) wait for an operator's decision.
ALTER TABLE agents ADD COLUMN revoked_at INTEGER;
ALTER TABLE agents ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
CREATE TABLE agent_retired_credentials (
  secret_hash TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  retired_at INTEGER NOT NULL
);
CREATE TABLE agent_registrations (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  hostname TEXT NOT NULL,
  version TEXT NOT NULL,
  agent_id TEXT NOT NULL DEFAULT '',
  secret_hash TEXT NOT NULL UNIQUE,
  remote_addr TEXT NOT NULL,
  reason TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
  created_at INTEGER NOT NULL,
  decided_at INTEGER,
  decided_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_registrations_org ON agent_registrations (org_id, status, created_at);
