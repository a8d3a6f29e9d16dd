"""Only the owner may change or empty the audit table (SECURITY.md G13).

The runtime role (core/dbroles.py: ``jft_app``) gets SELECT, INSERT, UPDATE
and DELETE on every table through the owner's default privileges. On
``audit_auditevent`` it keeps INSERT and SELECT only: this revokes UPDATE,
DELETE, TRUNCATE, REFERENCES and TRIGGER from every role that is not the
table's owner, PUBLIC included, whoever granted them. Nothing to do where
the application connects as the owner (development, tests). Reversing
grants nothing back.
"""

from django.db import migrations

# Frozen copy of core.dbroles.AUDIT_REVOKE_SQL as of this migration.
REVOKE = """
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


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVOKE, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_auditevent_hash_version")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop, elidable=False)]
