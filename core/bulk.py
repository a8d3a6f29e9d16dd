"""Fast bulk inserts for seed data and imports: PostgreSQL COPY, with a
plain executemany fallback on SQLite.

Rows are dicts keyed by model field names (``attname`` for foreign keys,
e.g. ``region_id``); missing keys take the field's default. Values are
prepared by the field itself (encrypted fields encrypt, JSON fields dump),
so what lands is exactly what ``Model.save()`` would have written — without
building model instances, which dominates bulk_create's cost.

``with_history=True`` also writes the django-simple-history "+" row of each
insert (same values, ``history_change_reason``), so seeded records show their
creation in the history tab like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

CHUNK = 5000


def _concrete(model):
    return list(model._meta.concrete_fields)


def _default(field):
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now()
    return field.get_default()  # "" for blank text fields, None for nullable ones


def _preparer(field, conn):
    """A fast per-field value preparer. On PostgreSQL most values go to COPY
    as they are; encrypted and JSON fields are prepared like ``save()`` does."""
    from django.db.models import JSONField

    from core.fields import EncryptedCharField

    if conn.vendor != "postgresql":
        return lambda v: field.get_db_prep_save(v, conn)
    if isinstance(field, EncryptedCharField):
        from core import crypto

        return lambda v: crypto.encrypt(str(v)) if v not in (None, "") else v
    if isinstance(field, JSONField):
        return lambda v: None if v is None else json.dumps(v, ensure_ascii=False)
    if field.get_internal_type() in {"DecimalField"}:
        return lambda v: field.get_db_prep_save(v, conn)
    return None  # as is


def _prepared(model, rows: Iterable[dict], *, skip_auto_pk: bool):
    conn = connections[DEFAULT_DB_ALIAS]
    fields = [
        f
        for f in _concrete(model)
        if not (skip_auto_pk and f.primary_key and f.get_internal_type().endswith("AutoField"))
    ]
    columns = [f.column for f in fields]
    plan = [(f, _preparer(f, conn)) for f in fields]
    out = []
    for row in rows:
        values = []
        for f, prep in plan:
            if f.attname in row:
                value = row[f.attname]
            elif f.name in row:
                value = row[f.name]
                if f.is_relation and value is not None and hasattr(value, "pk"):
                    value = value.pk
            else:
                value = _default(f)
            values.append(prep(value) if prep is not None else value)
        out.append(values)
    return columns, out


def _write(table: str, columns: list[str], rows: list[list]) -> None:
    if not rows:
        return
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            raw = cur.cursor  # psycopg 3 cursor behind Django's wrapper
            with raw.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cur.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", rows)  # noqa: S608 - quoted model names, values are parameters  # nosec B608


def copy_insert(
    model,
    rows: list[dict],
    *,
    with_history: bool = False,
    reason: str = "",
    user_id: int | None = None,
) -> int:
    """Insert ``rows`` (dicts) into ``model``'s table; returns the count.

    Primary keys must be given for UUID-keyed models (so callers can refer
    to the rows); auto-increment keys are left to the database.
    """
    pk = model._meta.pk
    auto_pk = pk.get_internal_type().endswith("AutoField")
    if with_history and auto_pk and rows and pk.attname not in rows[0]:
        # history rows need the ids: take them from the sequence up front
        for row, new_id in zip(rows, allocate_ids(model, len(rows)), strict=True):
            row[pk.attname] = new_id
    if with_history:
        # fill defaults into the rows so the history rows carry the same values
        for f in _concrete(model):
            if f.primary_key and f.attname not in rows[0]:
                continue
            for row in rows:
                if f.attname not in row and f.name not in row:
                    row[f.attname] = _default(f)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        columns, values = _prepared(model, chunk, skip_auto_pk=pk.attname not in chunk[0])
        _write(model._meta.db_table, columns, values)
        if with_history:
            history_model = model.history.model
            now = timezone.now()
            hrows = [
                {
                    **row,
                    "history_date": now,
                    "history_change_reason": reason,
                    "history_type": "+",
                    "history_user_id": user_id,
                }
                for row in chunk
            ]
            hcolumns, hvalues = _prepared(history_model, hrows, skip_auto_pk=True)
            _write(history_model._meta.db_table, hcolumns, hvalues)
    return len(rows)


def allocate_ids(model, n: int) -> list[int]:
    """Reserve ``n`` ids of an auto-increment primary key."""
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, column, n],
            )
            return [r[0] for r in cur.fetchall()]
        cur.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")  # noqa: S608 - model names only  # nosec B608
        start = cur.fetchone()[0] + 1
        return list(range(start, start + n))
