-- Email notifications: each project's recipients, and one row per
-- (migration, condition) that was queued. The UNIQUE key is what makes a
-- condition send once, across restarts.
CREATE TABLE email_recipients (
  group_id TEXT PRIMARY KEY REFERENCES projects(id),
  addresses TEXT NOT NULL DEFAULT '[]',
  updated_at INTEGER NOT NULL
);
CREATE TABLE email_notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  migration_id TEXT NOT NULL,
  group_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  deadline_at INTEGER NOT NULL DEFAULT 0,
  lead_ms INTEGER NOT NULL DEFAULT 0,
  recipients TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  sent_at INTEGER,
  failed INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  UNIQUE (migration_id, kind, deadline_at, lead_ms)
);
CREATE INDEX email_notifications_due ON email_notifications (sent_at, failed, next_attempt_at);
