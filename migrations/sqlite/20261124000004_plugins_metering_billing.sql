-- Resellers' WebAssembly plugins (the component itself is kept here so that every panel of
-- a cluster can load it).
CREATE TABLE plugins (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reseller_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('hook', 'billing')),
    sha256      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    wasm        BLOB    NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 0,
    on_failure  TEXT    NOT NULL DEFAULT 'deny' CHECK (on_failure IN ('deny', 'allow')),
    calls       INTEGER NOT NULL DEFAULT 0,
    failures    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    UNIQUE (reseller_id, name)
);

-- Each plugin's private key-value store.
CREATE TABLE plugin_kv (
    plugin_id INTEGER NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
    key       TEXT    NOT NULL,
    value     BLOB    NOT NULL,
    PRIMARY KEY (plugin_id, key)
);

-- Every call of a plugin: what it was asked, what it answered, what it cost, its log.
CREATE TABLE plugin_calls (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id INTEGER NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
    at        INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    fuel      INTEGER NOT NULL,
    micros    INTEGER NOT NULL,
    log       TEXT    NOT NULL,
    dry_run   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX plugin_calls_plugin ON plugin_calls (plugin_id, id);

-- Recent hook events per reseller, for dry runs against real events.
CREATE TABLE hook_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reseller_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    event       TEXT    NOT NULL
);
CREATE INDEX hook_events_reseller ON hook_events (reseller_id, id);

-- The metering job's last reading of each container's counters, so that restarts of the
-- container (counters reset) and of the panel (memory lost) neither double-count nor lose.
CREATE TABLE meter_state (
    engine_name TEXT    PRIMARY KEY,
    instance    TEXT    NOT NULL,
    cpu_ns      INTEGER NOT NULL,
    disk        INTEGER NOT NULL,
    at          INTEGER NOT NULL
);

-- Raw samples, kept for two days (usage graphs of the last hours).
CREATE TABLE usage_samples (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    seconds      INTEGER NOT NULL,
    running      INTEGER NOT NULL,
    cpu_us       INTEGER NOT NULL,
    memory       INTEGER NOT NULL,
    memory_peak  INTEGER NOT NULL,
    disk         INTEGER NOT NULL,
    inodes       INTEGER NOT NULL,
    procs        INTEGER NOT NULL
);
CREATE INDEX usage_samples_container ON usage_samples (container_id, at);
CREATE INDEX usage_samples_at ON usage_samples (at);

-- Hourly roll-up, written with every sample; what billing and the 30-day graphs read.
-- Keyed by container row, with the customer and name kept for after the container is gone.
CREATE TABLE usage_hourly (
    container_id        INTEGER NOT NULL,
    hour                INTEGER NOT NULL,
    customer_id         INTEGER NOT NULL,
    container           TEXT    NOT NULL,
    seconds             INTEGER NOT NULL,
    seconds_running     INTEGER NOT NULL,
    cpu_us              INTEGER NOT NULL,
    memory_byte_seconds INTEGER NOT NULL,
    memory_peak         INTEGER NOT NULL,
    disk_byte_seconds   INTEGER NOT NULL,
    disk_peak           INTEGER NOT NULL,
    inodes_peak         INTEGER NOT NULL,
    procs_peak          INTEGER NOT NULL,
    PRIMARY KEY (container_id, hour)
);
CREATE INDEX usage_hourly_customer ON usage_hourly (customer_id, hour);

-- Invoices: one per customer and period, never rewritten.
CREATE TABLE invoices (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reseller_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    period      TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    total       INTEGER NOT NULL,
    rule        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (customer_id, period)
);
CREATE INDEX invoices_reseller ON invoices (reseller_id, period);

CREATE TABLE invoice_lines (
    invoice_id      INTEGER NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    description     TEXT    NOT NULL,
    quantity_millis INTEGER NOT NULL,
    unit            TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, position)
);
