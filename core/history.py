"""Helpers for django-simple-history: who changed a record, and why."""

from __future__ import annotations


def history_stamp(instance, *, user, reason: str) -> None:
    """Attach the acting user and a stable dotted reason code to the next save."""
    instance._history_user = user if (user is not None and user.is_authenticated) else None
    instance._change_reason = reason
