-- A domain whose plain HTTP the front door sends to HTTPS (the customer's "Force HTTPS").
ALTER TABLE domains ADD COLUMN https_only INTEGER NOT NULL DEFAULT 0;
