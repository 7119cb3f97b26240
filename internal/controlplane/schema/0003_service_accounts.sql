-- Service accounts (Atlas's OAuth client credentials): a principal of kind
-- 'apikey' with service_account = 1 whose name is the client ID; it never
-- authenticates with Basic or Digest (its secret_hash is empty), only with
-- the Bearer tokens POST /api/oauth/token issues against one of its secrets.
ALTER TABLE principals ADD COLUMN service_account INTEGER NOT NULL DEFAULT 0;
ALTER TABLE principals ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
CREATE TABLE service_account_secrets (
  id TEXT PRIMARY KEY,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE oauth_tokens (
  token_hash TEXT PRIMARY KEY,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  secret_id TEXT NOT NULL REFERENCES service_account_secrets(id) ON DELETE CASCADE,
  expires_at INTEGER NOT NULL
);
CREATE INDEX oauth_tokens_expiry ON oauth_tokens(expires_at);
