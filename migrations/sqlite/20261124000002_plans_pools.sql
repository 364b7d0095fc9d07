-- What the provider gives each reseller: the most its customers' containers may hold.
CREATE TABLE reseller_pools (
    reseller_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    memory      INTEGER NOT NULL,
    cpus_milli  INTEGER NOT NULL,
    disk        INTEGER NOT NULL,
    containers  INTEGER NOT NULL
);

-- A reseller's plans: limits per container and per customer, and a monthly price.
CREATE TABLE plans (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    reseller_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    ct_memory           INTEGER NOT NULL,
    ct_cpus_milli       INTEGER NOT NULL,
    ct_disk             INTEGER NOT NULL,
    ct_procs            INTEGER NOT NULL,
    max_containers      INTEGER NOT NULL,
    total_memory        INTEGER NOT NULL,
    total_cpus_milli    INTEGER NOT NULL,
    total_disk          INTEGER NOT NULL,
    price_minor         INTEGER NOT NULL,
    currency            TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    UNIQUE (reseller_id, name)
);

ALTER TABLE users ADD COLUMN plan_id INTEGER REFERENCES plans(id);

-- What each container holds, for pool and plan sums.
ALTER TABLE containers ADD COLUMN memory INTEGER NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN cpus_milli INTEGER NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN disk INTEGER NOT NULL DEFAULT 0;
