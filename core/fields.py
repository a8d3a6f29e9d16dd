"""Model fields that encrypt their value at rest (core.crypto)."""

from __future__ import annotations

from django.db import models

from core import crypto


class EncryptedCharField(models.TextField):
    """A short text stored encrypted; lookups other than isnull are meaningless.

    Search and uniqueness go through a separate blind-index column.
    """

    description = "Encrypted text"

    def __init__(self, *args, max_plain_length: int = 255, **kwargs):
        self.max_plain_length = max_plain_length
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_plain_length"] = self.max_plain_length
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))

    def formfield(self, **kwargs):
        from django import forms

        return forms.CharField(max_length=self.max_plain_length, required=not self.blank)
