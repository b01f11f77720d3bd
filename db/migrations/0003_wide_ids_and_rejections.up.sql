-- The upstream's ids are JSON numbers: store any 64-bit one.
ALTER TABLE characters ALTER COLUMN id TYPE bigint;

-- Records the store cannot hold (a NUL byte, an oversized field) are
-- rejected one by one: how many, and which (id: reason, cut to a few).
ALTER TABLE ingest_runs
    ADD COLUMN rejected   integer NOT NULL DEFAULT 0,
    ADD COLUMN rejections text;
