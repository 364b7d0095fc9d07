-- Limit hits: the fault counters of each container's running instance at its last
-- reading, and one row per kind of fault per sample that saw one.
ALTER TABLE meter_state ADD COLUMN oom_kills BIGINT NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN memory_limit_hits BIGINT NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN pids_refused BIGINT NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN cpu_throttled_us BIGINT NOT NULL DEFAULT 0;

CREATE TABLE faults (
    id           BIGSERIAL PRIMARY KEY,
    container_id BIGINT NOT NULL,
    customer_id  BIGINT NOT NULL,
    container    TEXT    NOT NULL,
    at           BIGINT NOT NULL,
    kind         TEXT    NOT NULL,
    amount       BIGINT NOT NULL
);
CREATE INDEX faults_container ON faults (container_id, at);
CREATE INDEX faults_customer ON faults (customer_id, at);
