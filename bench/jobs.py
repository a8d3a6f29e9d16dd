"""Run one scheduled job in this process and report its time and memory.

``python -m bench.jobs <key>`` (settings from the environment, as the web
and worker processes of the bench have them) prints one JSON line:
``seconds``, the resident set before the job (``rss_before_kb``), its peak
(``vmhwm_kb``, from /proc/self/status) and the job's own result. The job
runs through Celery's ``Task.apply`` — the code a worker's child process
executes for it — so the peak is what a worker needs for that job.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime


def proc_status_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in kB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _sep, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def _task(dotted: str):
    module, _dot, name = dotted.rpartition(".")
    from importlib import import_module

    return getattr(import_module(module), name)


def daily_scan() -> object:
    return _task("followups.tasks.followup_scan").apply(throw=True).result


def indicator_snapshot() -> object:
    return _task("reports.tasks.snapshot_nightly").apply(throw=True).result


def county_exchange() -> object:
    """The police package of the bench county for the last finished quarter,
    built through ``referrals.services.exchange.exchange_build`` for a
    partner made for this run (a partner's period is built only once)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from referrals import rules
    from referrals.models import RunKind
    from referrals.services.exchange import exchange_build, exchange_partner_create

    by = get_user_model().objects.get(username="bench_prevention")
    folder = settings.VAR_DIR / "bench" / "exchange"
    folder.mkdir(parents=True, exist_ok=True)
    partner = exchange_partner_create(
        by=by,
        data={
            "department": "police",
            "name": f"bench {datetime.now():%Y%m%d%H%M%S}",
            "format": "csv",
            "delivery": "folder",
            "folder_path": str(folder),
        },
    )
    period = rules.last_finished_period(timezone.localdate(), partner.schedule)
    run = exchange_build(partner=partner, kind=RunKind.SCHEDULED, period=period, by=by)
    return {"period": period.label, "rows": run.rows if run else None}


JOBS = {
    "daily_scan": daily_scan,
    "indicator_snapshot": indicator_snapshot,
    "county_exchange": county_exchange,
}


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    key = argv[1]
    before = proc_status_kb()
    started = time.perf_counter()
    try:
        result = JOBS[key]()
        error = ""
    except Exception as exc:  # noqa: BLE001 - reported in the table, not hidden
        result, error = None, f"{type(exc).__name__}: {exc}"[:300]
    seconds = time.perf_counter() - started
    after = proc_status_kb()
    print(
        json.dumps(
            {
                "key": key,
                "seconds": round(seconds, 2),
                "rss_before_kb": before.get("VmRSS"),
                "vmhwm_kb": after.get("VmHWM"),
                "result": result,
                "error": error,
            },
            default=str,
        )
    )
    return 0 if not error else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
