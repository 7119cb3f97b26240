-- The sealed HTTP Digest HA1 (MD5(publicKey:realm:privateKey)) of API keys
-- created since Digest support; NULL for users and older keys (Basic only).
ALTER TABLE principals ADD COLUMN digest_ha1_enc BLOB;
