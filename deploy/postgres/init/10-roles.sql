-- 精防通: the database roles (SECURITY.md G13; docs/security.md → Audit).
--
-- Run once by the postgres image's entrypoint (/docker-entrypoint-initdb.d)
-- on an empty volume, as the bootstrap superuser (POSTGRES_USER) in
-- POSTGRES_DB. On an existing server run `manage.py setup_db_roles` instead
-- (core/dbroles.py: the same roles and privileges, plus moving the existing
-- tables to the owner).
--
--   jft_owner  owns the database, its schema and every table: `migrate` runs
--              as this role (docker-compose's one-shot migrate service).
--   jft_app    web, worker and beat connect as this role: SELECT, INSERT,
--              UPDATE, DELETE on what jft_owner creates (default privileges
--              below), but on audit_auditevent only INSERT and SELECT
--              (migration audit 0004 revokes the rest), and never the owner,
--              so it cannot drop or disable the append-only trigger.
--
-- Passwords come from the environment of the postgres service
-- (JFT_OWNER_PASSWORD, JFT_APP_PASSWORD; psql 15's \getenv).

\set ON_ERROR_STOP on
\getenv owner_password JFT_OWNER_PASSWORD
\getenv app_password JFT_APP_PASSWORD
\if :{?owner_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'JFT_OWNER_PASSWORD must be set for the postgres service'; END $$;
\endif
\if :{?app_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'JFT_APP_PASSWORD must be set for the postgres service'; END $$;
\endif

SELECT format('CREATE ROLE jft_owner LOGIN PASSWORD %L', :'owner_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jft_owner') \gexec
SELECT format('CREATE ROLE jft_app LOGIN PASSWORD %L', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jft_app') \gexec

-- the owner owns the database (and so, on PostgreSQL 15+, the public schema)
SELECT format('ALTER DATABASE %I OWNER TO jft_owner', current_database()) \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO jft_app', current_database()) \gexec
GRANT USAGE, CREATE ON SCHEMA public TO jft_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO jft_app;

-- every table and sequence the owner's migrations create: read and write
-- for the runtime role (no TRUNCATE, REFERENCES or TRIGGER)
ALTER DEFAULT PRIVILEGES FOR ROLE jft_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO jft_app;
ALTER DEFAULT PRIVILEGES FOR ROLE jft_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO jft_app;
