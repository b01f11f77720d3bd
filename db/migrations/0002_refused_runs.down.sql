-- Back to the four results of 0001: refused runs become failed ones (the
-- error text still says the guard refused them).
UPDATE ingest_runs SET result = 'failed' WHERE result = 'refused';
ALTER TABLE ingest_runs DROP CONSTRAINT ingest_runs_result_check;
ALTER TABLE ingest_runs ADD CONSTRAINT ingest_runs_result_check
    CHECK (result IN ('running', 'success', 'failed', 'abandoned'));
