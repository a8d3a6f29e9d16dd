"""The demo data pipeline behind ``manage.py seed_demo`` (API.md → demo data).

Each app contributes ``<app>/seed.py`` with ``seed(ctx)``; stages run in
STAGES order inside one transaction. A stage records itself in SeedStage so a
second run changes nothing. Bulk inserts only: ``--patients 50000`` must stay
well under a minute on PostgreSQL.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import date
from importlib import import_module

from django.db import connection, transaction
from django.utils import timezone

STAGES = [
    "accounts.seed",
    "patients.seed",
    "followups.seed",
    "subsidies.seed",
    "referrals.seed",
    "reports.seed",
]

DEMO_PASSWORD = "Demo-Pass-2026!"


@dataclass
class SeedContext:
    patients: int = 2300
    townships: int = 4
    password: str = DEMO_PASSWORD
    seed: int = 20260101
    today: date = field(default_factory=timezone.localdate)
    stdout: object = None
    rng: random.Random = field(init=False)
    # filled by stages for later stages
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        self.rng = random.Random(self.seed)

    def log(self, msg: str) -> None:
        if self.stdout is not None:
            self.stdout.write(msg)

    def params(self) -> dict:
        return {"patients": self.patients, "townships": self.townships, "seed": self.seed}


def run(ctx: SeedContext) -> list[str]:
    from core.models import SeedStage

    ran = []
    for dotted in STAGES:
        try:
            module = import_module(dotted)
        except ModuleNotFoundError as exc:
            if exc.name == dotted:
                continue
            raise
        done = SeedStage.objects.filter(name=dotted).first()
        if done is not None:
            if done.params != ctx.params():
                raise SystemExit(
                    f"The database already holds demo data built with {done.params}; "
                    f"use a fresh database for {ctx.params()}."
                )
            if hasattr(module, "load"):
                module.load(ctx)  # let later stages find what this one made
            continue
        started, cpu = time.monotonic(), time.process_time()
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cur:
                    # demo data: a crash right after commit may lose the stage
                    # (it is then simply built again); no wait for the WAL flush
                    cur.execute("SET LOCAL synchronous_commit TO OFF")
            module.seed(ctx)
            SeedStage.objects.create(name=dotted, params=ctx.params())
        # wall time, and the part of it spent in this process (the rest is the
        # database, or waiting for a CPU on a busy machine)
        ctx.log(
            f"  {dotted}: {time.monotonic() - started:.1f}s "
            f"(python {time.process_time() - cpu:.1f}s)"
        )
        ran.append(dotted)
    return ran
