-- Grants for the API's database role: it only ever reads.
--
-- The API needs exactly:
--   CONNECT on the database            (to log in to it)
--   USAGE on schema public             (to see the tables)
--   SELECT on characters               (the data it serves)
--   SELECT on data_version             (ETags and cache validation)
--   SELECT on ingest_runs              (last_refresh_age in /healthcheck)
--   SELECT on schema_migrations        (readiness: the expected schema version)
-- and nothing else: no INSERT/UPDATE/DELETE/TRUNCATE, no sequences, no
-- CREATE. LISTEN needs no privilege. On top of the grants, the role and the
-- API's sessions default to read-only transactions, so even a mistakenly
-- broad grant could not be used by accident.
--
-- PUBLIC keeps Postgres's defaults (CONNECT and TEMP on databases; since
-- Postgres 15 no CREATE on schema public). To deny temporary tables too,
-- run REVOKE TEMP ON DATABASE ... FROM PUBLIC, which affects every role.
--
-- Usage, as the owner of the tables (the role that ran the migrations),
-- after creating the login role, for example
--   CREATE ROLE rickmorty_api LOGIN PASSWORD '...';
-- then:
--   psql "$OWNER_DATABASE_URL" -v api_role=rickmorty_api -v dbname=rickmorty \
--        -f db/grants/api_readonly.sql
-- and give the API DATABASE_URL=postgres://rickmorty_api:...@host/rickmorty.
--
-- cmd/api's TestWorksWithASelectOnlyRole runs this very file against a
-- fresh role and checks that reads work and writes are refused.
\set ON_ERROR_STOP on

GRANT CONNECT ON DATABASE :"dbname" TO :"api_role";
GRANT USAGE ON SCHEMA public TO :"api_role";
GRANT SELECT ON TABLE public.characters, public.data_version, public.ingest_runs, public.schema_migrations TO :"api_role";
ALTER ROLE :"api_role" SET default_transaction_read_only = on;
