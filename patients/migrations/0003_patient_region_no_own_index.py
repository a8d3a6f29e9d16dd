"""Patient.region loses its own index (docs/benchmarks.md, F1): the
covering index patient_region_cover (0002) leads with region_id and serves
every lookup by region. Kept, the narrower region_id index wins the
planner's cost estimate as soon as some heap pages are not all-visible, and
county-wide counts read 15,000 heap buffers instead of 2,500 index ones.

Dropped CONCURRENTLY on PostgreSQL (the index and its ``varchar_pattern_ops``
twin), plainly elsewhere; so this migration is not atomic.
"""

import django.db.models.deletion
from django.db import migrations, models


def _region_indexes(model, schema_editor) -> list[str]:
    """The single-column indexes of patients_patient.region_id, by name."""
    column = model._meta.get_field("region").column
    with schema_editor.connection.cursor() as cursor:
        found = schema_editor.connection.introspection.get_constraints(
            cursor, model._meta.db_table
        )
    return sorted(
        name
        for name, info in found.items()
        if info["index"] and not info["unique"] and not info["primary_key"]
        and info["columns"] == [column]
    )


def drop_region_index(apps, schema_editor):
    model = apps.get_model("patients", "Patient")
    quote = schema_editor.quote_name
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for name in _region_indexes(model, schema_editor):
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {quote(name)}")


def restore_region_index(apps, schema_editor):
    model = apps.get_model("patients", "Patient")
    field = model._meta.get_field("region")
    if _region_indexes(model, schema_editor):
        return
    schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
    like = getattr(schema_editor, "_create_like_index_sql", None)
    if like is not None and (statement := like(model, field)) is not None:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0002_security_accounts"),
        ("patients", "0002_patient_region_cover"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="patient",
                    name="region",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.region",
                        verbose_name="现住址区划",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_region_index, restore_region_index),
            ],
        ),
    ]
