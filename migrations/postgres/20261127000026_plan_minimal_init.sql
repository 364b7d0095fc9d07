-- 1: the plan's containers keep Acetate's minimal init even where their template has
-- systemd; 0: they boot their template's own init.
ALTER TABLE plans ADD COLUMN minimal_init INTEGER NOT NULL DEFAULT 0;
