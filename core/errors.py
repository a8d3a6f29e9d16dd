"""Domain errors: raised by services, shown to users in their language."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the operation.

    ``message`` is already translated (lazy); ``field`` names the form field
    it belongs to, if any, so forms and serializers can attach it there.
    """

    def __init__(self, message, *, field: str | None = None, code: str = "invalid"):
        super().__init__(str(message))
        self.message = message
        self.field = field
        self.code = code


class StaleVersion(DomainError):
    """The record changed since the client read it (optimistic locking)."""

    def __init__(self, message, *, field: str | None = None):
        super().__init__(message, field=field, code="stale")
