-- Whether the plan's containers may reach the outside (1) or only the host's open ports
-- and their forwards (0).
ALTER TABLE plans ADD COLUMN egress INTEGER NOT NULL DEFAULT 1;
