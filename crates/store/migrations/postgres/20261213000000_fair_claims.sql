-- Each queued run's company, so a claim can share the workers across
-- companies (`fair_share.rs`): the companies with queued runs are found by
-- skipping through run_queue_company_due, and each one's runs in flight are
-- counted on run_queue_company_leased.
ALTER TABLE run_queue ADD COLUMN company_id TEXT NOT NULL DEFAULT '';
UPDATE run_queue AS q SET company_id = r.company_id FROM runs AS r WHERE r.run_id = q.run_id;
CREATE INDEX run_queue_company_due ON run_queue (company_id, available_at);
CREATE INDEX run_queue_company_leased ON run_queue (company_id) WHERE lease_owner IS NOT NULL;
