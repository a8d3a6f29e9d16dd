"""Actions in Django's own admin site are admin actions too (G12)."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.db.models.signals import post_save

from audit.services import audit_record


def on_admin_log_entry(sender, instance, created, **kwargs):
    if not created:
        return
    ct = instance.content_type
    audit_record(
        actor=instance.user,
        action="admin.django_admin",
        object_type=(f"{ct.app_label}.{ct.model}" if ct else "")[:64],
        object_id=str(instance.object_id or "")[:64],
        # object_repr is left out: it may be a patient's name.
        detail={"flag": instance.action_flag},
    )


def connect() -> None:
    post_save.connect(on_admin_log_entry, sender=LogEntry, dispatch_uid="audit.admin_log")
