-- Disk I/O caps every container of a plan gets (0: no cap).
ALTER TABLE plans ADD COLUMN ct_io_read_bps BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN ct_io_write_bps BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN ct_io_read_iops BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN ct_io_write_iops BIGINT NOT NULL DEFAULT 0;
