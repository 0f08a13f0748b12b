-- Per-company limits the admin sets (`PUT /companies/{id}/limits`); NULL is
-- the deployment's default.
ALTER TABLE companies ADD COLUMN payments_per_second BIGINT;
ALTER TABLE companies ADD COLUMN payments_burst BIGINT;
