"""No two policies of one county in force on the same day, in PostgreSQL.

``CountyPolicy.clean()`` refuses an overlap with a clear message; two saves
at the same moment could both pass it. An exclusion constraint per policy
table closes that: (region, the closed validity range) may not overlap
another row of the same region. ``valid_to`` NULL is an open end.

btree_gist lets a GiST index compare the region code with ``=``. It is a
trusted extension (PostgreSQL 13+): the database owner may create it
without superuser rights; the ``jft`` role owns its databases (checked on
PostgreSQL 15). Where a DBA has already installed it, IF NOT EXISTS needs
no rights at all. SQLite (the ``make run`` default) gets nothing: clean()
still refuses there.
"""

from django.db import migrations

TABLES = {
    "subsidies_rewardpolicy": "rewardpolicy_no_overlap",
    "subsidies_settlementpolicy": "settlementpolicy_no_overlap",
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist;", params=None)
    for table, name in TABLES.items():
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} EXCLUDE USING gist "
            "(region_id WITH =, daterange(valid_from, valid_to, '[]') WITH &&);",
            params=None,
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name in TABLES.items():
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name};", params=None)
    # the extension stays: other objects may use it, and dropping it needs its owner


class Migration(migrations.Migration):
    dependencies = [("subsidies", "0005_payerlayer_min_risk_level")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
