-- Accounts: the provider, its resellers and their customers.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('provider', 'reseller', 'customer')),
    reseller_id   BIGINT  REFERENCES users(id),
    password_hash TEXT    NOT NULL,
    suspended     BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);

-- API tokens, stored as SHA-256 hashes: the token itself is shown once.
CREATE TABLE api_tokens (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    label      TEXT    NOT NULL DEFAULT '',
    created_at BIGINT  NOT NULL,
    revoked_at BIGINT
);

-- Containers as their owners name them; engine_name is the host-wide engine name.
CREATE TABLE containers (
    id          BIGSERIAL PRIMARY KEY,
    owner_id    BIGINT  NOT NULL REFERENCES users(id),
    name        TEXT    NOT NULL,
    engine_name TEXT    NOT NULL UNIQUE,
    state       TEXT    NOT NULL CHECK (state IN ('creating', 'ready', 'destroying')),
    created_at  BIGINT  NOT NULL,
    UNIQUE (owner_id, name)
);

-- Every state-changing action: who, what, when, result.
CREATE TABLE audit_log (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT  NOT NULL,
    actor_id BIGINT,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    result   TEXT    NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);
