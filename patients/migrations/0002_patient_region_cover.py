"""The covering index of county-wide lists and searches (docs/benchmarks.md,
F1): the scoped counts of the stat cards and the name / ID-number search
filter read it without touching the table (index-only scans).

Built CONCURRENTLY on PostgreSQL (≈ 3 s on 500,000 patients, the table
stays writable), so this migration is not atomic; a plain index on SQLite.
"""

from django.db import migrations, models

from core.migration_ops import AddIndexConcurrentlyIfPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patients", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrentlyIfPostgres(
            model_name="patient",
            index=models.Index(
                fields=["region", "name", "id"],
                include=(
                    "id_number_index",
                    "status",
                    "next_followup_due",
                    "risk_level",
                    "poverty",
                    "certificate",
                ),
                name="patient_region_cover",
            ),
        ),
    ]
