"""Version the chain hash per row (SECURITY.md G13).

Rows already written keep version 1 (unkeyed SHA-256): the table is
append-only, so they are never re-hashed. The column is added with a default
of 1 for them (PostgreSQL adds it without touching a row, so the append-only
trigger does not fire), then the default becomes 2: every new row is chained
with the keyed hash (audit.services.CHAIN_VERSION).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(default=2),
        ),
    ]
