"""Actions in Django's admin site are audited like the app's own (G12)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType

from accounts.models import Organisation
from audit.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_django_admin_log_entries_become_audit_rows(world):
    org = world.org.hc_a1
    LogEntry.objects.log_actions(
        user_id=world.users.admin.pk,
        queryset=[org],
        action_flag=ADDITION,
        change_message="",
        single_object=True,
    )
    event = AuditEvent.objects.get(action="admin.django_admin")
    assert event.actor == world.users.admin
    assert event.object_type == "accounts.organisation" and event.object_id == str(org.pk)
    assert event.detail == {"flag": ADDITION}
    assert ContentType.objects.get_for_model(Organisation)
