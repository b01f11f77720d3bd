-- Grants for the API's database role: it only ever reads. Part 1 of 3:
-- run as the owner of the database and its tables (the role that ran the
-- migrations); it needs no other privilege.
--
-- The API needs exactly:
--   CONNECT on the database            (to log in to it)
--   USAGE on schema public             (to see the tables)
--   SELECT on characters               (the data it serves)
--   SELECT on data_version             (ETags and cache validation)
--   SELECT on ingest_runs              (last_refresh_age in /healthcheck)
--   SELECT on schema_migrations        (readiness: the expected schema version)
-- and nothing else: no INSERT/UPDATE/DELETE/TRUNCATE, no sequences, no
-- CREATE. LISTEN needs no privilege.
--
-- The other two parts need more than ownership:
--   api_role.sql   (a role with CREATEROLE): the role's sessions default to
--                  read-only transactions, so even a mistakenly broad grant
--                  could not be used by accident;
--   functions.sql  (a superuser): closes the functions PUBLIC may execute
--                  that write or block without any table privilege (large
--                  objects, advisory locks).
--
-- PUBLIC keeps Postgres's defaults (CONNECT and TEMP on databases; since
-- Postgres 15 no CREATE on schema public). To deny temporary tables too,
-- run REVOKE TEMP ON DATABASE ... FROM PUBLIC, which affects every role.
--
-- Usage, after creating the login role (CREATE ROLE rickmorty_api LOGIN
-- PASSWORD '...'):
--   psql "$OWNER_DATABASE_URL" -v api_role=rickmorty_api -v dbname=rickmorty \
--        -f db/grants/api_readonly.sql
-- and give the API DATABASE_URL=postgres://rickmorty_api:...@host/rickmorty.
--
-- db's TestGrantsAsEachRole runs the three files as the roles they name and
-- checks what the API role can and cannot do; cmd/api's
-- TestWorksWithASelectOnlyRole runs the API as such a role.
\set ON_ERROR_STOP on

GRANT CONNECT ON DATABASE :"dbname" TO :"api_role";
GRANT USAGE ON SCHEMA public TO :"api_role";
GRANT SELECT ON TABLE public.characters, public.data_version, public.ingest_runs, public.schema_migrations TO :"api_role";
