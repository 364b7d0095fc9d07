-- Set for a password someone else chose (the first provider's generated one, a reset's
-- one-time password): its holder is sent to their account page until they change it.
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
