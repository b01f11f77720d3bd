-- GET /characters filters by case-insensitive substrings of the name, the
-- origin name and the location name (ILIKE '%text%'). A btree cannot serve a
-- leading wildcard; trigram GIN indexes can, so a filtered listing reads the
-- matching rows instead of the whole table. pg_trgm ships with Postgres and
-- is a trusted extension: the database owner may create it, no superuser.
-- Expand only: the previous release ignores these indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX characters_name_trgm_idx ON characters USING gin (name gin_trgm_ops);
CREATE INDEX characters_origin_name_trgm_idx ON characters USING gin (origin_name gin_trgm_ops);
CREATE INDEX characters_location_name_trgm_idx ON characters USING gin (location_name gin_trgm_ops);
