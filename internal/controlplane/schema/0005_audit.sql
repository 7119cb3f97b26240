-- The audit trail: one row per state-changing Admin API request (and per
-- login) with the principal, the route, the path and the answer's status.
-- Bodies are never stored, so secrets never are.
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id TEXT NOT NULL,
  group_id TEXT NOT NULL DEFAULT '',
  principal_id TEXT NOT NULL,
  principal_kind TEXT NOT NULL,
  principal_name TEXT NOT NULL,
  remote_addr TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  status INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org_id, id);
