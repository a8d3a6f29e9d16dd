"""Give every active patient who was never followed up a first due date.

Registration used to leave ``next_followup_due`` empty, and the overdue list
and the daily scan compare that date with today, so a patient nobody ever
visited was never overdue. Registration now sets it (``patient_register``:
``registered_on`` + ``FIRST_FOLLOWUP_DAYS``, 14 days by default); this fills
the same date for the rows registered before. One UPDATE per registration
day (a few thousand at most), on any database. The reverse is a no-op: the
dates are correct, and nothing can tell them apart from later ones.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.db.models import Exists, OuterRef


def fill_first_due(apps, schema_editor):
    Patient = apps.get_model("patients", "Patient")
    FollowUp = apps.get_model("followups", "FollowUp")
    days = timedelta(days=getattr(settings, "FIRST_FOLLOWUP_DAYS", 14))
    todo = Patient.objects.filter(status="active", next_followup_due__isnull=True).filter(
        ~Exists(FollowUp.objects.filter(patient=OuterRef("pk")))
    )
    for day in todo.order_by().values_list("registered_on", flat=True).distinct():
        todo.filter(registered_on=day).update(next_followup_due=day + days)


class Migration(migrations.Migration):
    dependencies = [
        ("followups", "0002_trim_redundant_indexes"),
        ("patients", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill_first_due, migrations.RunPython.noop)]
