-- Public ports: the range the provider gives each reseller (ranges never overlap), and
-- the forwards customers make from it to their containers. A public port and protocol
-- lead to one container at most.
CREATE TABLE reseller_ports (
    reseller_id  BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    first_port   INTEGER NOT NULL,
    last_port    INTEGER NOT NULL
);
CREATE TABLE forwards (
    id           BIGSERIAL PRIMARY KEY,
    container_id BIGINT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    public_port  INTEGER NOT NULL,
    proto        TEXT    NOT NULL CHECK (proto IN ('tcp', 'udp')),
    private_port INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (public_port, proto)
);
CREATE INDEX forwards_container ON forwards (container_id);
