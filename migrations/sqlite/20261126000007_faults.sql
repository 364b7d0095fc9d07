-- Limit hits: the fault counters of each container's running instance at its last
-- reading, and one row per kind of fault per sample that saw one.
ALTER TABLE meter_state ADD COLUMN oom_kills INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN memory_limit_hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN pids_refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN cpu_throttled_us INTEGER NOT NULL DEFAULT 0;

CREATE TABLE faults (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL,
    customer_id  INTEGER NOT NULL,
    container    TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    amount       INTEGER NOT NULL
);
CREATE INDEX faults_container ON faults (container_id, at);
CREATE INDEX faults_customer ON faults (customer_id, at);
