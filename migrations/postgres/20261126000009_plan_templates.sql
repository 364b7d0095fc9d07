-- Templates a plan's customers may choose (comma-separated names; empty: every template).
ALTER TABLE plans ADD COLUMN templates TEXT NOT NULL DEFAULT '';
