ALTER TABLE ingest_runs DROP COLUMN rejections, DROP COLUMN rejected;
ALTER TABLE characters ALTER COLUMN id TYPE integer;
