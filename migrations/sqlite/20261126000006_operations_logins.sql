-- Long actions (create, start, destroy, template import...) as durable operations: any
-- panel sees them, and a restart finishes or fails what was in flight.
CREATE TABLE operations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id      INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    container_id  INTEGER,
    state         TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    message       TEXT    NOT NULL DEFAULT '',
    error_code    TEXT,
    result        TEXT,
    runner        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
CREATE INDEX operations_running ON operations (state, runner);
CREATE INDEX operations_owner ON operations (owner_id, id);

-- Failed logins, counted per key (address, account, or both) in a window, and locks.
CREATE TABLE login_counters (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0
);

-- Addresses each account logged in from (the most recent few).
CREATE TABLE login_known (
    account TEXT    NOT NULL,
    address TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (account, address)
);
