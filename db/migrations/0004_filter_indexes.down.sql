DROP INDEX IF EXISTS characters_location_name_trgm_idx;
DROP INDEX IF EXISTS characters_origin_name_trgm_idx;
DROP INDEX IF EXISTS characters_name_trgm_idx;
-- pg_trgm stays: other objects may have come to use it since, and keeping
-- an unused extension costs nothing.
