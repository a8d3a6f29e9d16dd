"""Pluggable notification channels (SMS / e-mail).

The in-app inbox is the primary channel (alert rows themselves); a backend
named by ``settings.NOTIFICATION_BACKEND`` additionally tells each
organisation that its inbox has new items. Texts sent through a channel
never name the disorder or the patient: they say that something needs
attention and point to the inbox (SECURITY.md G15). Each backend has a
``channel`` name; deliveries are recorded once per alert recipient and
channel, so changing the backend class of the same channel (console in the
demo, a gateway in production) does not send anything twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    recipient: str  # "org:<id>": an organisation, never a phone number or a name
    text: str
    organisation_id: int | None = None


class ConsoleBackend:
    """Demo channel standing in for SMS: writes the message to the log
    (no personal data in it)."""

    channel = "sms"

    def send(self, message: Message) -> None:
        log.info("notify %s: %s", message.recipient, message.text)


class MemoryBackend:
    """Test channel: keeps messages in a list."""

    channel = "sms"
    outbox: list[Message] = []

    def send(self, message: Message) -> None:
        type(self).outbox.append(message)


class EmailBackend:
    """E-mail to the active staff of the organisation who have an address,
    through Django's mail settings (``EMAIL_HOST`` …)."""

    channel = "email"
    subject = "精防通提醒"

    def send(self, message: Message) -> None:
        from django.contrib.auth import get_user_model
        from django.core.mail import send_mail

        if message.organisation_id is None:
            return
        addresses = list(
            get_user_model()
            .objects.filter(
                staff__organisation_id=message.organisation_id, is_active=True, email__gt=""
            )
            .order_by("pk")
            .values_list("email", flat=True)
        )
        if addresses:
            send_mail(
                self.subject,
                message.text,
                settings.DEFAULT_FROM_EMAIL,
                addresses,
                fail_silently=False,
            )


def backend():
    return import_string(settings.NOTIFICATION_BACKEND)()
