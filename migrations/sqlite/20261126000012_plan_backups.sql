-- Snapshots and backups a plan gives each container: how many snapshots it may keep (0: none),
-- how often the panel backs it up (hours; 0: only when asked) and which backups it keeps
-- (restic's keep-last/daily/weekly/monthly; 0: that rule is off).
ALTER TABLE plans ADD COLUMN max_snapshots BIGINT NOT NULL DEFAULT 5;
ALTER TABLE plans ADD COLUMN backup_every_hours BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN backup_keep_last BIGINT NOT NULL DEFAULT 7;
ALTER TABLE plans ADD COLUMN backup_keep_daily BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN backup_keep_weekly BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN backup_keep_monthly BIGINT NOT NULL DEFAULT 0;
