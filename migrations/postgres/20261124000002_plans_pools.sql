-- What the provider gives each reseller: the most its customers' containers may hold.
CREATE TABLE reseller_pools (
    reseller_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    memory      BIGINT NOT NULL,
    cpus_milli  BIGINT NOT NULL,
    disk        BIGINT NOT NULL,
    containers  BIGINT NOT NULL
);

-- A reseller's plans: limits per container and per customer, and a monthly price.
CREATE TABLE plans (
    id                  BIGSERIAL PRIMARY KEY,
    reseller_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    ct_memory           BIGINT NOT NULL,
    ct_cpus_milli       BIGINT NOT NULL,
    ct_disk             BIGINT NOT NULL,
    ct_procs            BIGINT NOT NULL,
    max_containers      BIGINT NOT NULL,
    total_memory        BIGINT NOT NULL,
    total_cpus_milli    BIGINT NOT NULL,
    total_disk          BIGINT NOT NULL,
    price_minor         BIGINT NOT NULL,
    currency            TEXT    NOT NULL,
    created_at          BIGINT NOT NULL,
    UNIQUE (reseller_id, name)
);

ALTER TABLE users ADD COLUMN plan_id BIGINT REFERENCES plans(id);

-- What each container holds, for pool and plan sums.
ALTER TABLE containers ADD COLUMN memory BIGINT NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN cpus_milli BIGINT NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN disk BIGINT NOT NULL DEFAULT 0;
