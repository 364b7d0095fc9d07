-- SQLite: a deleted account's name may be taken again (PostgreSQL: migration 27). Names
-- are unique among live accounts only; the deleted row keeps its name for the invoices and
-- audit entries that show it. SQLite cannot drop a column's UNIQUE in place: the table is
-- rebuilt, by `Db::connect` after the migrations, on a connection whose foreign keys are
-- off (sqlx runs every SQLite migration in a transaction, where that pragma is ignored),
-- so that dropping the old table cascades to nothing.
BEGIN;
CREATE TABLE users_new (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    name                 TEXT    NOT NULL,
    role                 TEXT    NOT NULL CHECK (role IN ('provider', 'reseller', 'customer')),
    reseller_id          INTEGER REFERENCES users(id),
    password_hash        TEXT    NOT NULL,
    suspended            INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    plan_id              INTEGER REFERENCES plans(id),
    deleted_at           BIGINT,
    must_change_password BIGINT  NOT NULL DEFAULT 0,
    totp_enabled         INTEGER NOT NULL DEFAULT 0
);
INSERT INTO users_new (id, name, role, reseller_id, password_hash, suspended, created_at,
                       plan_id, deleted_at, must_change_password, totp_enabled)
    SELECT id, name, role, reseller_id, password_hash, suspended, created_at,
           plan_id, deleted_at, must_change_password, totp_enabled FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE UNIQUE INDEX users_live_name ON users (name) WHERE deleted_at IS NULL;
COMMIT;
