-- Grants for the API's database role, part 2 of 3 (see api_readonly.sql):
-- run as a role with CREATEROLE (or a superuser). Changing another role's
-- defaults is not something a table owner may do.
--
-- Every session of the API role defaults to read-only transactions. A
-- session may still turn that off for itself (SET default_transaction_read_only
-- = off): what it can then do is bounded by the grants of part 1 (SELECT
-- only) and by part 3 (functions.sql).
--
-- Usage:
--   psql "$ADMIN_DATABASE_URL" -v api_role=rickmorty_api -f db/grants/api_role.sql
\set ON_ERROR_STOP on

ALTER ROLE :"api_role" SET default_transaction_read_only = on;
