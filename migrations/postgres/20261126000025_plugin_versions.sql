-- A plugin replaced in place keeps its previous version for a rollback (one step back):
-- same name, id, switches, key-value store and record of calls.
ALTER TABLE plugins ADD COLUMN previous_wasm BYTEA;
ALTER TABLE plugins ADD COLUMN previous_sha256 TEXT;
ALTER TABLE plugins ADD COLUMN previous_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plugins ADD COLUMN replaced_at BIGINT;
