"""Rows in PostgreSQL's COPY text format, built from the models' own fields.

The generator writes several million rows, so it does not build model
instances or call ``get_db_prep_save`` per value (that is what makes
``bulk_create`` slow): it formats each value itself, once, as COPY text.
The column list comes from the model at run time, so a column another app
adds later is filled with its default instead of breaking the load; a new
required column without a default stops the load with its name.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone

NULL = r"\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class MissingColumn(RuntimeError):
    """A NOT NULL column without a default that the generator does not fill."""


def esc(value: str) -> str:
    """A string as COPY text (backslash, tab and newlines escaped)."""
    return value.translate(_ESCAPES)


def t_bool(value: bool) -> str:
    return "t" if value else "f"


def t_opt(value) -> str:
    """``None`` as NULL, anything else through :func:`to_text`."""
    return NULL if value is None else to_text(value)


def t_json(value) -> str:
    return esc(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


def to_text(value) -> str:
    """Any Python value a model default can hold, as COPY text."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return t_bool(value)
    if isinstance(value, int | Decimal | float):
        return str(value)
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | dict | tuple):
        return t_json(value)
    return esc(str(value))


def _is_auto_pk(field) -> bool:
    return field.primary_key and field.get_internal_type().endswith("AutoField")


def _default_text(field) -> str:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return to_text(timezone.now())
    if field.has_default():
        value = field.get_default()
        if isinstance(field, models.JSONField):
            return t_json(value)
        return to_text(value)
    if field.null:
        return NULL
    if field.blank and isinstance(field, models.CharField | models.TextField):
        return ""
    raise MissingColumn(
        f"{field.model._meta.label}.{field.name} is NOT NULL without a default: "
        "teach bench.province to fill it."
    )


@dataclass
class TableSpec:
    """One table's COPY statement and a template of its rows.

    Plain data (no model references) so it can be sent to generator
    processes. ``line`` takes a dict of already formatted text values keyed
    by attname (every given column; extra keys are ignored); the other
    columns hold their defaults in the template.
    """

    label: str
    table: str
    columns: list[str]
    given: list[str]
    template: str

    @classmethod
    def for_model(cls, model, *, given, with_pk: bool = False) -> TableSpec:
        """``with_pk``: the generator gives auto-increment primary keys itself
        (children refer to them); the sequence is moved past them afterwards."""
        given = list(dict.fromkeys(given))
        fields = [f for f in model._meta.concrete_fields if with_pk or not _is_auto_pk(f)]
        names = {f.attname for f in fields}
        unknown = set(given) - names
        if unknown:
            raise MissingColumn(f"{model._meta.label} has no column(s) {sorted(unknown)}")
        parts = [
            f"%({f.attname})s" if f.attname in given else _default_text(f).replace("%", "%%")
            for f in fields
        ]
        return cls(
            label=model._meta.label,
            table=model._meta.db_table,
            columns=[f.column for f in fields],
            given=given,
            template="\t".join(parts) + "\n",
        )

    @property
    def copy_sql(self) -> str:
        cols = ", ".join(f'"{c}"' for c in self.columns)
        return f'COPY "{self.table}" ({cols}) FROM STDIN'

    def line(self, row: dict) -> str:
        return self.template % row
