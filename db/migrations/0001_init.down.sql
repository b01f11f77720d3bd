DROP TABLE IF EXISTS data_version;
DROP TABLE IF EXISTS ingest_runs;
DROP TABLE IF EXISTS characters;
