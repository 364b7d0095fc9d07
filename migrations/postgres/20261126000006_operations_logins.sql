-- Long actions (create, start, destroy, template import...) as durable operations: any
-- panel sees them, and a restart finishes or fails what was in flight.
CREATE TABLE operations (
    id            BIGSERIAL PRIMARY KEY,
    owner_id      BIGINT  NOT NULL,
    kind          TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    container_id  BIGINT,
    state         TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    message       TEXT    NOT NULL DEFAULT '',
    error_code    TEXT,
    result        TEXT,
    runner        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX operations_running ON operations (state, runner);
CREATE INDEX operations_owner ON operations (owner_id, id);

-- Failed logins, counted per key (address, account, or both) in a window, and locks.
CREATE TABLE login_counters (
    key          TEXT    PRIMARY KEY,
    failures     BIGINT  NOT NULL,
    window_start BIGINT  NOT NULL,
    locked_until BIGINT  NOT NULL DEFAULT 0
);

-- Addresses each account logged in from (the most recent few).
CREATE TABLE login_known (
    account TEXT    NOT NULL,
    address TEXT    NOT NULL,
    at      BIGINT  NOT NULL,
    PRIMARY KEY (account, address)
);
