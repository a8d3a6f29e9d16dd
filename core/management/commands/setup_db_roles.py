"""``manage.py setup_db_roles``: give an existing database the owner and
runtime roles (SECURITY.md G13; core/dbroles.py).

Connects with ``--admin-url`` (default: DATABASE_URL), which must be a
superuser — or a role that may create roles and owns the database and its
tables. Creates ``jft_owner`` and ``jft_app`` (or the names given) when they
do not exist, with the passwords from ``JFT_OWNER_PASSWORD`` and
``JFT_APP_PASSWORD`` (or ``…_FILE``); makes the owner the owner of the
database and of every table, view, sequence and function in it; grants the
runtime role read and write on all tables now and by default later, except
UPDATE, DELETE and TRUNCATE on the audit table. Safe to run again.

Afterwards: run ``migrate`` with the owner's URL and the application with the
runtime role's (docker-compose.yml shows both).
"""

from __future__ import annotations

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from config.env import secret
from core.dbroles import setup_statements


def _django_url() -> str:
    s = connection.settings_dict
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgresql://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class Command(BaseCommand):
    help = "Create the owner and runtime database roles and their privileges (G13)."

    def add_arguments(self, parser):
        parser.add_argument("--admin-url", help="superuser connection (default: DATABASE_URL)")
        parser.add_argument("--owner", default="jft_owner")
        parser.add_argument("--app", default="jft_app")
        parser.add_argument(
            "--dry-run", action="store_true", help="print the statements (no passwords), run none"
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("setup_db_roles is for PostgreSQL.")
        owner, app = options["owner"], options["app"]
        if owner == app:
            raise CommandError("The owner and the runtime role must differ.")
        url = options["admin_url"] or _django_url()
        url = url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=False) as conn:
            existing = {
                r[0]
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [[owner, app]]
                )
            }
            database = conn.execute("SELECT current_database()").fetchone()[0]
            passwords = {
                "owner_password": secret("JFT_OWNER_PASSWORD"),
                "app_password": secret("JFT_APP_PASSWORD"),
            }
            if options["dry_run"]:
                passwords = {k: ("********" if v else None) for k, v in passwords.items()}
            statements = setup_statements(
                database=database,
                owner=owner,
                app=app,
                owner_exists=owner in existing,
                app_exists=app in existing,
                **passwords,
            )
            if options["dry_run"]:
                for statement in statements:
                    self.stdout.write(statement.as_string(conn).strip() + ";")
                conn.rollback()
                return
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)
        self.stdout.write(
            self.style.SUCCESS(
                f"Roles ready in {database}: {owner} (owner, migrations), "
                f"{app} (runtime; INSERT/SELECT only on the audit table)."
            )
        )
