"""The database roles of a production server (SECURITY.md G13).

Two roles, so that the application cannot rewrite its own audit trail:

- the **owner** (``jft_owner``) owns the database, the schema and every
  table; ``migrate`` runs as it;
- the **runtime** role (``jft_app``) is what web, worker and beat connect
  as: SELECT, INSERT, UPDATE, DELETE on every table (granted now and, through
  default privileges, on every table the owner creates later), USAGE on the
  sequences — but on ``audit_auditevent`` only INSERT and SELECT. It owns
  nothing, so it cannot ALTER the audit table, drop or disable its
  append-only trigger, or TRUNCATE it.

``deploy/postgres/init/10-roles.sql`` sets this up on docker-compose's first
start; ``manage.py setup_db_roles`` (these statements) on an existing server,
where it also hands the existing tables to the owner. Migration
``audit/0004_runtime_role_append_only`` revokes from every non-owner role
what this module revokes on the audit table, whoever granted it.
"""

from __future__ import annotations

from psycopg import sql

AUDIT_TABLE = "audit_auditevent"
RUNTIME_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
AUDIT_REVOKED_PRIVILEGES = ("UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# Revoke from every role but the owner (PUBLIC included) what would let it
# change or empty the audit table. Run by the owner or a superuser.
AUDIT_REVOKE_SQL = """
DO $$
DECLARE
    target regclass := to_regclass('audit_auditevent');
    grantee oid;
BEGIN
    IF target IS NULL THEN
        RETURN;
    END IF;
    FOR grantee IN
        SELECT DISTINCT a.grantee
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = target
          AND a.grantee <> c.relowner
          AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
    LOOP
        IF grantee = 0 THEN
            EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER '
                    'ON audit_auditevent FROM PUBLIC';
        ELSE
            EXECUTE format(
                'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER '
                'ON audit_auditevent FROM %I', pg_get_userbyid(grantee));
        END IF;
    END LOOP;
END
$$;
"""

# Hand every table, view, free-standing sequence and function of the schema
# to the owner (sequences of serial/identity columns follow their table).
_REASSIGN_SQL = """
DO $$
DECLARE
    obj record;
BEGIN
    FOR obj IN
        SELECT c.oid::regclass AS name, c.relkind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND c.relowner <> {owner_oid}
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d
              WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
    LOOP
        IF obj.relkind = 'S' THEN
            EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', obj.name, {owner});
        ELSIF obj.relkind IN ('v') THEN
            EXECUTE format('ALTER VIEW %s OWNER TO %I', obj.name, {owner});
        ELSIF obj.relkind IN ('m') THEN
            EXECUTE format('ALTER MATERIALIZED VIEW %s OWNER TO %I', obj.name, {owner});
        ELSE
            EXECUTE format('ALTER TABLE %s OWNER TO %I', obj.name, {owner});
        END IF;
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS name
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner <> {owner_oid}
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO %I', obj.name, {owner});
    END LOOP;
END
$$;
"""


def _role_statement(name: str, password: str | None, exists: bool) -> sql.Composed | None:
    ident = sql.Identifier(name)
    if not exists:
        if password:
            return sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password))
        return sql.SQL("CREATE ROLE {} LOGIN").format(ident)
    if password:
        return sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password))
    return None


def setup_statements(
    *,
    database: str,
    owner: str,
    app: str,
    owner_password: str | None = None,
    app_password: str | None = None,
    owner_exists: bool = False,
    app_exists: bool = False,
) -> list[sql.Composable]:
    """The statements, in order, that give an existing database the two
    roles. Idempotent: run again, they change nothing (passwords are set
    again when given)."""
    db, own, run = sql.Identifier(database), sql.Identifier(owner), sql.Identifier(app)
    owner_literal = sql.Literal(owner)
    statements: list[sql.Composable | None] = [
        _role_statement(owner, owner_password, owner_exists),
        _role_statement(app, app_password, app_exists),
        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, own),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, run),
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(own),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(run),
        sql.SQL(_REASSIGN_SQL).format(
            owner=owner_literal,
            owner_oid=sql.SQL("(SELECT oid FROM pg_roles WHERE rolname = {})").format(
                owner_literal
            ),
        ),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT {} ON TABLES TO {}"
        ).format(own, sql.SQL(RUNTIME_TABLE_PRIVILEGES), run),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
            "GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(own, run),
        *runtime_grant_statements(app),
    ]
    return [s for s in statements if s is not None]


def runtime_grant_statements(app: str) -> list[sql.Composable]:
    """What the runtime role may do on the tables that exist now, the audit
    table's exception included (also used by the tests on a test role)."""
    run = sql.Identifier(app)
    return [
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA public TO {}").format(
            sql.SQL(RUNTIME_TABLE_PRIVILEGES), run
        ),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(run),
        sql.SQL(AUDIT_REVOKE_SQL),
    ]
