-- Domains customers attach to a port of their containers, served by the front door on
-- 80/443 with the certificate the panel got over ACME (self-signed until then). A domain
-- leads to one container; the rule that a domain and its subdomains stay with one
-- account is the service's (it needs the owners). Resellers may restrict their
-- customers to domains under suffixes of theirs.
CREATE TABLE domains (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    domain         TEXT    NOT NULL UNIQUE,
    container_id   INTEGER NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    port           INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    cert_chain     TEXT,
    cert_key       TEXT,
    cert_not_after INTEGER,
    cert_error     TEXT,
    cert_next_try  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX domains_container ON domains (container_id);
CREATE TABLE reseller_domains (
    reseller_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    suffix      TEXT   NOT NULL,
    PRIMARY KEY (reseller_id, suffix)
);
