-- Limit hits sent to the resellers' overuse policies (WIT 1.2.0). A fault row is handed
-- to the policies once: `dispatched_at` is set when that is done (rows from before this
-- migration count as done). Notices are what a policy tells a customer; reverts are the
-- limits a temporary adjustment restores when its time is up.
ALTER TABLE faults ADD COLUMN dispatched_at INTEGER;
UPDATE faults SET dispatched_at = at;
-- Seconds the sample that saw the fault covered.
ALTER TABLE faults ADD COLUMN seconds INTEGER NOT NULL DEFAULT 0;
CREATE INDEX faults_undispatched ON faults (id) WHERE dispatched_at IS NULL;

CREATE TABLE notices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    container_id INTEGER REFERENCES containers(id) ON DELETE CASCADE,
    container    TEXT    NOT NULL DEFAULT '',
    at           INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    message      TEXT    NOT NULL
);
CREATE INDEX notices_customer ON notices (customer_id, at);
CREATE INDEX notices_container ON notices (container_id, at);

CREATE TABLE limit_reverts (
    container_id INTEGER PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
    due_at       INTEGER NOT NULL,
    -- The limits to restore, as the engine's JSON (memory, cpus_milli, procs, disk).
    limits       TEXT    NOT NULL,
    source       TEXT    NOT NULL
);
CREATE INDEX limit_reverts_due ON limit_reverts (due_at);
