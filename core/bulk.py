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

``bulk_load`` wraps a large load on PostgreSQL: foreign keys and indexes of
the loaded tables are checked and built once at the end instead of per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import contextmanager

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

        encrypt = crypto.encrypter()  # the key looked up once per column
        return lambda v: encrypt(str(v)) if v not in (None, "") else v
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
    history_values: list[dict] | None = None,
) -> int:
    """Insert ``rows`` (dicts) into ``model``'s table; returns the count.

    Primary keys must be given for UUID-keyed models (so callers can refer
    to the rows); auto-increment keys are left to the database.
    ``history_values`` (one dict per row, by ``attname``) gives the history
    rows other values of some columns than the records: a record written
    with its later state keeps the state it was created with in its "+" row.
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
    history = _history_plan(model) if with_history else None
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        columns, values = _prepared(model, chunk, skip_auto_pk=pk.attname not in chunk[0])
        _write(model._meta.db_table, columns, values)
        if history is not None:
            # the history rows carry the values just prepared (encrypted once)
            table, hcolumns = history
            at = {c: i for i, c in enumerate(columns)}
            now = timezone.now()
            if connection.vendor != "postgresql":
                now = model.history.model._meta.get_field("history_date").get_db_prep_save(
                    now, connection
                )
            tail = {
                "history_date": now,
                "history_change_reason": reason,
                "history_type": "+",
                "history_user_id": user_id,
            }
            picks = [(at[c], None) if c in at else (None, tail[c]) for c in hcolumns]
            hvalues = [[v[i] if i is not None else t for i, t in picks] for v in values]
            if history_values is not None:
                _override(model, hcolumns, hvalues, history_values[start : start + CHUNK])
            _write(table, hcolumns, hvalues)
    return len(rows)


def _override(model, hcolumns, hvalues, overrides: list[dict]) -> None:
    conn = connections[DEFAULT_DB_ALIAS]
    fields = {f.attname: f for f in _concrete(model.history.model)}
    plan = []
    for attname in overrides[0] if overrides else ():
        field = fields[attname]
        prep = _preparer(field, conn)
        plan.append((attname, hcolumns.index(field.column), prep))
    for row, values in zip(hvalues, overrides, strict=True):
        for attname, index, prep in plan:
            value = values[attname]
            row[index] = prep(value) if prep is not None else value


def _history_plan(model):
    """(table, columns) of ``model``'s history rows: the model's own columns
    plus simple-history's four (its auto ``history_id`` left to the database)."""
    history_model = model.history.model
    own = {f.column for f in _concrete(model)}
    extra = {"history_date", "history_change_reason", "history_type", "history_user_id"}
    columns = []
    for f in _concrete(history_model):
        if f.primary_key:
            continue
        if f.column not in own and f.column not in extra:
            raise ValueError(f"{history_model.__name__}.{f.name} has no value in a seeded row")
        columns.append(f.column)
    return history_model._meta.db_table, columns


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


@contextmanager
def bulk_load(*models):
    """Load ``models``' tables in bulk: foreign keys checked and indexes built
    once, at the end of the block, instead of row by row.

    PostgreSQL checks a deferred foreign key with one trigger call per
    inserted row at commit, and maintains every index row by row (half a
    million follow-ups: millions of look-ups and random index inserts).
    Inside the caller's transaction the foreign keys and the indexes that
    back no constraint are dropped here and created again, with their own
    names and definitions, when the block ends: adding a constraint checks
    every row in one set-based statement (a violation still aborts the
    transaction), and an index is built by one sort. No-op on other
    databases and outside a transaction. An error inside the block must
    end the transaction (as it does in ``transaction.atomic``): the drops
    are undone with it.
    """
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cur:
        _check_pending(cur)
        cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) "
            "ORDER BY conrelid, conname",
            [tables],
        )
        constraints = cur.fetchall()
        cur.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid = ANY(%s::regclass[]) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "ORDER BY 1",
            [tables],
        )
        indexes = cur.fetchall()
        for table, name, _definition in constraints:
            cur.execute(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}")
        for name, _definition in indexes:
            cur.execute(f"DROP INDEX {_q(name)}")
    yield
    with connection.cursor() as cur:
        _check_pending(cur)
        # definitions are PostgreSQL's own text of what was dropped above
        for _name, definition in indexes:
            cur.execute(definition)
        for table, name, definition in constraints:
            cur.execute(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}")


def _check_pending(cur) -> None:
    """Run the foreign-key checks still queued in this transaction now (a
    table with pending checks cannot be altered); the project's foreign keys
    are all ``DEFERRABLE INITIALLY DEFERRED``, which is restored after."""
    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cur.execute("SET CONSTRAINTS ALL DEFERRED")


def _q(name: str) -> str:
    return connection.ops.quote_name(name.strip('"'))
