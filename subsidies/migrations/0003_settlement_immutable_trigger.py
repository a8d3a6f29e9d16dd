"""Make settlements and their lines immutable in PostgreSQL (DOMAIN.md →
One-stop settlement: "a settlement is immutable once saved; corrections are
reversals").

A row trigger refuses every UPDATE and DELETE of ``subsidies_settlement`` and
``subsidies_settlementline``, whoever sends it (queryset ``update()`` and
``delete()``, raw SQL, the admin). Nothing legitimate needs either: a
reversal is a new row pointing at the original, ``seed_demo`` and the
province generator only insert (COPY fires no UPDATE/DELETE trigger).
TRUNCATE is a statement, not a row operation: it stays possible for the
test runner's flush (``transaction=True`` tests) and for a deliberate purge
by the DBA. SQLite (the ``make run`` default) gets nothing: the models'
``save()``/``delete()`` still refuse there.
"""

from django.db import migrations

TABLES = ("subsidies_settlement", "subsidies_settlementline")

FUNCTION = """
CREATE OR REPLACE FUNCTION subsidies_settlement_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is immutable: % refused (reverse the settlement instead)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

TRIGGER = """
DROP TRIGGER IF EXISTS {table}_immutable ON {table};
CREATE TRIGGER {table}_immutable
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION subsidies_settlement_immutable();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(TRIGGER.format(table=table), params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table};", params=None)
    schema_editor.execute("DROP FUNCTION IF EXISTS subsidies_settlement_immutable();", params=None)


class Migration(migrations.Migration):
    dependencies = [("subsidies", "0002_settlement_created_by_protect")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
