"""Pluggable notification channels (SMS / e-mail).

Texts sent through a channel never name the disorder or the patient: they
say that something needs attention and point to the inbox (SECURITY.md G15).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    recipient: str  # an account id or an organisation id, never a phone number in logs
    text: str


class ConsoleBackend:
    """Demo channel: writes the message to the log (no personal data in it)."""

    def send(self, message: Message) -> None:
        log.info("notify %s: %s", message.recipient, message.text)


class MemoryBackend:
    """Test channel: keeps messages in a list."""

    outbox: list[Message] = []

    def send(self, message: Message) -> None:
        type(self).outbox.append(message)


def backend():
    return import_string(settings.NOTIFICATION_BACKEND)()
