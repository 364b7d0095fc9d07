-- Network bytes per container (as the container sees them: received, sent).
ALTER TABLE meter_state ADD COLUMN net_rx INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meter_state ADD COLUMN net_tx INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_samples ADD COLUMN net_rx INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_samples ADD COLUMN net_tx INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN net_rx INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN net_tx INTEGER NOT NULL DEFAULT 0;
