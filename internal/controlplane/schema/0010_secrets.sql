-- A value sealed with the secrets key when the store is created: opening it
-- at start tells a wrong key apart from a damaged secret.
CREATE TABLE secrets_canary (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  sealed BLOB NOT NULL
);
-- The webhook URL with its user information, sealed; webhook_url keeps the
-- URL without it, for display.
ALTER TABLE projects ADD COLUMN webhook_url_enc BLOB;
