-- Deleted accounts keep their row (invoices, audit entries and usage refer to them) and
-- their name; they cannot log in, hold nothing and are listed nowhere.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
