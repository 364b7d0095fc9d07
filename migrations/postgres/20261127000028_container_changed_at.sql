-- When a panel last changed the container (ms since the epoch): another panel on the same
-- database reads the container again before showing a picture older than that.
ALTER TABLE containers ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
