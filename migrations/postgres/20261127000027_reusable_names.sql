-- A deleted account's name may be taken again: names are unique among live accounts only
-- (the deleted row keeps its name for the invoices and audit entries that show it).
ALTER TABLE users DROP CONSTRAINT users_name_key;
CREATE UNIQUE INDEX users_live_name ON users (name) WHERE deleted_at IS NULL;
