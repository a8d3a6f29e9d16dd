"""Where an endpoint's time goes, in-process (no HTTP, no concurrency).

``python -m bench.profile [--only key,...] [--explain] [--cprofile key]``
with the bench environment (scripts/bench.sh exports it; see
docs/benchmarks.md → Profiling) renders each endpoint of ``bench.catalog``
through Django's test client as its bench account and prints, per
endpoint: median time, time spent in SQL, query count and the slowest
queries — with ``--explain`` their EXPLAIN (ANALYZE, BUFFERS) plans; with
``--cprofile key`` the cProfile of that endpoint, by internal time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--explain", action="store_true")
    p.add_argument("--cprofile", default=None)
    p.add_argument("--top", type=int, default=3)
    args = p.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.catalog import ENDPOINTS, make_plan, route_exists
    from bench.run import cpu_seconds

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    User = get_user_model()
    plan = make_plan()
    clients: dict = {}
    for e in ENDPOINTS:
        if args.only and e.key not in args.only:
            continue
        if e.method != "GET":
            continue  # writes are measured over HTTP only (they change the data)
        if not route_exists(e.probe_path(plan)):
            print(f"{e.key}: not built")
            continue
        if e.persona not in clients:
            c = Client()
            if e.persona:
                c.force_login(User.objects.get(username=f"bench_{e.persona}"))
            clients[e.persona] = c
        c = clients[e.persona]
        c.get(e.request(plan, 0).path)  # warm
        times, sql, counts, slow, app_cpu, db_cpu = [], [], [], [], [], []
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
        for i in range(args.repeat):
            path = e.request(plan, i + 1).path
            with CaptureQueriesContext(connection) as q:
                db_before = cpu_seconds([backend])
                cpu_before = time.process_time()
                started = time.perf_counter()
                response = c.get(path)
                times.append(time.perf_counter() - started)
                app_cpu.append(time.process_time() - cpu_before)
                db_cpu.append(cpu_seconds([backend]) - db_before)
            sql.append(sum(float(x["time"]) for x in q.captured_queries))
            counts.append(len(q.captured_queries))
            slow = sorted(q.captured_queries, key=lambda x: -float(x["time"]))[: args.top]
        print(
            f"{e.key}: HTTP {response.status_code}, {statistics.median(times) * 1000:.0f} ms "
            f"(CPU: app {statistics.mean(app_cpu) * 1000:.0f} ms, database "
            f"{statistics.mean(db_cpu) * 1000:.0f} ms), SQL wall "
            f"{statistics.median(sql) * 1000:.0f} ms, {max(counts)} queries"
        )
        for qq in slow:
            print(f"   {float(qq['time']) * 1000:6.1f} ms  {qq['sql'][:160]}")
            if args.explain and qq["sql"].lstrip().upper().startswith(("SELECT", "WITH")):
                with connection.cursor() as cur:
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + qq["sql"])
                    for (line,) in cur.fetchall():
                        print(f"        {line}")
        if args.cprofile == e.key:
            prof = cProfile.Profile()
            prof.enable()
            for i in range(args.repeat):
                c.get(e.request(plan, i + 1).path)
            prof.disable()
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
