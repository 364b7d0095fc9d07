-- Public ports per address of the host: a reseller may have a range on each address the
-- provider gives it ('' = every address of the host, as before), and a forward is
-- published on one address or on all of them. A port and protocol on one address lead to
-- one container at most.
ALTER TABLE reseller_ports ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE reseller_ports DROP CONSTRAINT reseller_ports_pkey;
ALTER TABLE reseller_ports ADD PRIMARY KEY (reseller_id, address);

ALTER TABLE forwards ADD COLUMN public_address TEXT NOT NULL DEFAULT '';
ALTER TABLE forwards DROP CONSTRAINT forwards_public_port_proto_key;
ALTER TABLE forwards ADD CONSTRAINT forwards_public_key UNIQUE (public_address, public_port, proto);
