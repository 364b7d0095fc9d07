-- Certificates of the panel's own hostnames (`--panel-host`), which the front door serves
-- over HTTPS in front of the panel, got over ACME like customers' domains.
CREATE TABLE panel_certificates (
    domain         TEXT PRIMARY KEY,
    cert_chain     TEXT,
    cert_key       TEXT,
    cert_not_after BIGINT,
    cert_error     TEXT,
    cert_next_try  BIGINT NOT NULL DEFAULT 0
);
