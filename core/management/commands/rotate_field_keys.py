"""``manage.py rotate_field_keys``: re-encrypt every encrypted column with
the newest key (SECURITY.md G16).

Key rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old
ones after it), deploy, run this command, then remove the old keys. Every
``core.fields.EncryptedCharField`` of every model is covered, including the
django-simple-history tables, which hold old values too.

Rows are read and rewritten in primary-key order, in chunks, each chunk in
its own transaction with its rows locked; values already under the newest
key are skipped, so the command can be interrupted and run again. It writes
with plain UPDATEs: no history rows, no ``auto_now`` changes, no signals (a
rotation changes no value). Values are never printed.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from core import crypto
from core.fields import EncryptedCharField


def encrypted_models():
    """(model, [encrypted fields]) for every concrete model that has any."""
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        fields = [f for f in meta.concrete_fields if isinstance(f, EncryptedCharField)]
        if fields:
            yield model, fields


def _rotate(value: str | None, kid: str) -> str | None:
    """The value under the newest key, or None when it is already there."""
    if value is None or value == "" or value.startswith(kid + "$"):
        return None
    return crypto.encrypt(crypto.decrypt(value))


class Command(BaseCommand):
    help = "Re-encrypt all encrypted fields (and their history) with the newest key."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count values to re-encrypt; change nothing."
        )

    def handle(self, *args, chunk_size: int, dry_run: bool, **options):
        kid = crypto.current_kid()
        total = 0
        for model, fields in encrypted_models():
            try:
                count = self._rotate_table(model, fields, kid, chunk_size, dry_run)
            except Exception as exc:  # a key missing from the ring, a damaged value
                raise CommandError(
                    f"{model._meta.label}: cannot re-encrypt ({type(exc).__name__}). "
                    "Is every old key still listed in FIELD_ENCRYPTION_KEYS?"
                ) from exc
            total += count
            self.stdout.write(f"{model._meta.label}: {count} values")
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(self.style.SUCCESS(f"{total} values {verb} under key {kid!r}."))

    def _rotate_table(self, model, fields, kid, chunk_size, dry_run) -> int:
        qn = connection.ops.quote_name
        meta = model._meta
        table, pk = qn(meta.db_table), qn(meta.pk.column)
        columns = [qn(f.column) for f in fields]
        select = f"SELECT {pk}, {', '.join(columns)} FROM {table}"  # noqa: S608 - quoted names  # nosec B608
        update = (
            f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in columns)} "  # noqa: S608 - quoted model names, values are parameters  # nosec B608
            f"WHERE {pk} = %s"
        )
        changed = 0
        last = None
        while True:
            with transaction.atomic(), connection.cursor() as cur:
                where = "" if last is None else f" WHERE {pk} > %s"
                cur.execute(
                    f"{select}{where} ORDER BY {pk} LIMIT %s FOR UPDATE",
                    ([] if last is None else [last]) + [chunk_size],
                )
                rows = cur.fetchall()
                if not rows:
                    return changed
                last = rows[-1][0]
                updates = []
                for row in rows:
                    new = [_rotate(v, kid) for v in row[1:]]
                    if any(n is not None for n in new):
                        changed += sum(n is not None for n in new)
                        values = [
                            n if n is not None else old for n, old in zip(new, row[1:], strict=True)
                        ]
                        updates.append([*values, row[0]])
                if updates and not dry_run:
                    cur.executemany(update, updates)
