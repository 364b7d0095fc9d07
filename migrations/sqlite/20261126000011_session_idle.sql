-- When a session was last used: sessions idle too long end, like those past their expiry.
ALTER TABLE sessions ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
