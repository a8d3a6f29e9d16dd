"""Outbox handlers of the followups app (see core.outbox)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core import notify
from core.outbox import handler
from followups.models import AlertRecipient, NotificationDelivery

CHANNEL = "inbox_notice"


@handler("alert.notify")
def alert_notify(payload: dict) -> None:
    """Tell each recipient organisation once that its inbox has a new alert.

    The text never names the patient or the disorder (SECURITY.md G15).
    """
    backend = notify.backend()
    for rcpt in AlertRecipient.objects.filter(alert_id=payload["alert"]).select_related("alert"):
        try:
            with transaction.atomic():
                NotificationDelivery.objects.create(recipient=rcpt, channel=CHANNEL)
        except IntegrityError:
            continue  # already delivered: a re-delivered message is a no-op
        backend.send(
            notify.Message(
                recipient=f"org:{rcpt.organisation_id}",
                text=_("精防通：您单位有一条新的%(kind)s预警待处理，请登录系统查看。")
                % {"kind": rcpt.alert.get_kind_display()},
            )
        )
