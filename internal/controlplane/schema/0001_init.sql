CREATE TABLE orgs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  source_group_id TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL,
  webhook_url TEXT NOT NULL DEFAULT '',
  webhook_secret BLOB,
  created_at INTEGER NOT NULL,
  UNIQUE (org_id, name)
);
-- principals are users (name = username) and API keys (name = public key).
CREATE TABLE principals (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('user', 'apikey')),
  name TEXT NOT NULL UNIQUE,
  secret_hash TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  is_admin INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE roles (
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  org_id TEXT NOT NULL,
  group_id TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  PRIMARY KEY (principal_id, org_id, group_id, role)
);
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE clusters (
  id TEXT PRIMARY KEY,
  group_id TEXT NOT NULL REFERENCES projects(id),
  name TEXT NOT NULL,
  conn_redacted TEXT NOT NULL,
  conn_enc BLOB NOT NULL,
  username TEXT NOT NULL DEFAULT '',
  password_enc BLOB,
  created_at INTEGER NOT NULL,
  UNIQUE (group_id, name)
);
CREATE TABLE link_tokens (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL UNIQUE REFERENCES orgs(id),
  secret_hash TEXT NOT NULL,
  access_list TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL
);
CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  hostname TEXT NOT NULL,
  version TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  registered_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  lost INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agents_org ON agents (org_id, hostname);
CREATE TABLE deployments (
  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (agent_id, name)
);
CREATE TABLE validations (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  group_id TEXT NOT NULL REFERENCES projects(id),
  source_group_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  destination_cluster TEXT NOT NULL,
  request_enc BLOB NOT NULL,
  status TEXT NOT NULL,
  error_message TEXT NOT NULL DEFAULT '',
  checks TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE migrations (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  group_id TEXT NOT NULL REFERENCES projects(id),
  source_group_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  host TEXT NOT NULL,
  destination_cluster TEXT NOT NULL,
  request_enc BLOB NOT NULL,
  status TEXT NOT NULL,
  ready INTEGER NOT NULL DEFAULT 0,
  lag_seconds INTEGER,
  progress TEXT,
  error_message TEXT NOT NULL DEFAULT '',
  window_started_at INTEGER,
  expires_at INTEGER,
  expiry_warned INTEGER NOT NULL DEFAULT 0,
  cutover_requested_at INTEGER,
  stalled INTEGER NOT NULL DEFAULT 0,
  report TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  completed_at INTEGER
);
-- One migration per destination at a time.
CREATE UNIQUE INDEX migrations_active_destination ON migrations (group_id, destination_cluster)
  WHERE status IN ('NEW', 'WORKING');
CREATE INDEX migrations_group ON migrations (group_id, created_at);
CREATE TABLE work_items (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  validation_id TEXT NOT NULL DEFAULT '',
  migration_id TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  acked_at INTEGER
);
CREATE INDEX work_items_pending ON work_items (agent_id, acked_at);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id TEXT NOT NULL,
  group_id TEXT NOT NULL,
  migration_id TEXT NOT NULL,
  type TEXT NOT NULL,
  message TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX events_migration ON events (migration_id, id);
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  delivered_at INTEGER,
  failed INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (delivered_at, failed, next_attempt_at);
