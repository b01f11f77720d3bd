-- A sync refused by the mass-delete guard is recorded as its own result,
-- 'refused', distinct from a 'failed' run (a crawl or database failure).
-- Expand only: the allowed set grows, so the previous release (which
-- writes only the old four) runs unchanged against this schema. The table
-- holds one small row per run; re-checking it is quick.
ALTER TABLE ingest_runs DROP CONSTRAINT ingest_runs_result_check;
ALTER TABLE ingest_runs ADD CONSTRAINT ingest_runs_result_check
    CHECK (result IN ('running', 'success', 'failed', 'refused', 'abandoned'));
