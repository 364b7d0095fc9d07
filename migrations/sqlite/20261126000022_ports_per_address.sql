-- Public ports per address of the host: a reseller may have a range on each address the
-- provider gives it ('' = every address of the host, as before), and a forward is
-- published on one address or on all of them. A port and protocol on one address lead to
-- one container at most.
CREATE TABLE reseller_ports_new (
    reseller_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address      TEXT    NOT NULL DEFAULT '',
    first_port   INTEGER NOT NULL,
    last_port    INTEGER NOT NULL,
    PRIMARY KEY (reseller_id, address)
);
INSERT INTO reseller_ports_new (reseller_id, address, first_port, last_port)
    SELECT reseller_id, '', first_port, last_port FROM reseller_ports;
DROP TABLE reseller_ports;
ALTER TABLE reseller_ports_new RENAME TO reseller_ports;

CREATE TABLE forwards_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id   INTEGER NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    public_address TEXT    NOT NULL DEFAULT '',
    public_port    INTEGER NOT NULL,
    proto          TEXT    NOT NULL CHECK (proto IN ('tcp', 'udp')),
    private_port   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (public_address, public_port, proto)
);
INSERT INTO forwards_new (id, container_id, public_address, public_port, proto, private_port, created_at)
    SELECT id, container_id, '', public_port, proto, private_port, created_at FROM forwards;
DROP TABLE forwards;
ALTER TABLE forwards_new RENAME TO forwards;
CREATE INDEX forwards_container ON forwards (container_id);
