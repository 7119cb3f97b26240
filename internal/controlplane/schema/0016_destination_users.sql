-- The database user of each migration and validation on its destination
-- (destuser.go): created by the control plane after the migration or
-- validation is created, handed to the migration host instead of the
-- cluster's own credentials, dropped when it ends. The row (with the sealed
-- password) is written with its owner, before createUser; sent records that
-- a createUser reached the server, so a user that may exist is dropped.
CREATE TABLE destination_users (
  owner_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('migration', 'validation')),
  group_id TEXT NOT NULL,
  cluster TEXT NOT NULL,
  username TEXT NOT NULL,
  password_enc BLOB,
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'ACTIVE', 'UNMANAGED', 'DROPPING', 'DROPPED', 'ABANDONED')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  sent INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX destination_users_due ON destination_users (state, next_attempt_at);
