-- Disk I/O per container (bytes read and written, sampled like the network's) and two more
-- limit hits: packets a rate limit dropped, and time held back waiting for capped I/O.
-- meter_state keeps the running instance's counters at its last reading.
ALTER TABLE meter_state ADD COLUMN io_read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN io_write INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN io_stall_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN net_drops INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_samples ADD COLUMN io_read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_samples ADD COLUMN io_write INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN io_read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN io_write INTEGER NOT NULL DEFAULT 0;
