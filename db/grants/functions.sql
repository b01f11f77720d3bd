-- Grants for the API's database role, part 3 of 3 (see api_readonly.sql):
-- run as a superuser, in the application's database (function privileges
-- are per database). The functions belong to the bootstrap superuser, so
-- only a superuser can change who may execute them.
--
-- Every role may, by default, execute functions that need no table
-- privilege at all. A read-only role that turns off its sessions'
-- read-only default could otherwise
--   - create and fill large objects (lo_from_bytea, lo_create, lowrite, ...),
--     storage that no table grant limits;
--   - take the ingester's advisory lock (pg_try_advisory_lock) and keep it,
--     so that every ingest reports "locked" for as long as it likes.
-- This file revokes them from PUBLIC and gives the advisory-lock functions
-- back to the ingester's role only (its ingest lock, and golang-migrate's
-- lock when it migrates). Superusers keep everything.
--
-- What cannot be closed: NOTIFY (and pg_notify) on any channel needs no
-- privilege, and a REVOKE would not stop the NOTIFY statement. The API
-- therefore never trusts a notification's payload: it only makes each pod
-- read the data version again.
--
-- This affects every role of this database: do it on a database that
-- belongs to rickmorty alone. Undo with GRANT EXECUTE ... TO PUBLIC.
--
-- Usage:
--   psql "$SUPERUSER_DATABASE_URL" -v ingester_role=rickmorty -f db/grants/functions.sql
\set ON_ERROR_STOP on

REVOKE EXECUTE ON FUNCTION
    lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea), lo_put(oid, bigint, bytea),
    lowrite(integer, bytea), lo_truncate(integer, integer), lo_truncate64(integer, bigint),
    lo_unlink(oid), lo_open(oid, integer), lo_import(text), lo_import(text, oid), lo_export(oid, text)
FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
    pg_advisory_lock(bigint), pg_advisory_lock(integer, integer),
    pg_advisory_lock_shared(bigint), pg_advisory_lock_shared(integer, integer),
    pg_try_advisory_lock(bigint), pg_try_advisory_lock(integer, integer),
    pg_try_advisory_lock_shared(bigint), pg_try_advisory_lock_shared(integer, integer),
    pg_advisory_xact_lock(bigint), pg_advisory_xact_lock(integer, integer),
    pg_advisory_xact_lock_shared(bigint), pg_advisory_xact_lock_shared(integer, integer),
    pg_try_advisory_xact_lock(bigint), pg_try_advisory_xact_lock(integer, integer),
    pg_try_advisory_xact_lock_shared(bigint), pg_try_advisory_xact_lock_shared(integer, integer),
    pg_advisory_unlock(bigint), pg_advisory_unlock(integer, integer),
    pg_advisory_unlock_shared(bigint), pg_advisory_unlock_shared(integer, integer),
    pg_advisory_unlock_all()
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    pg_try_advisory_lock(bigint), pg_advisory_lock(bigint), pg_advisory_unlock(bigint)
TO :"ingester_role";
