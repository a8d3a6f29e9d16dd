from django.core.management.base import BaseCommand

from reports.benchmark import time_dashboard, time_engine


class Command(BaseCommand):
    help = (
        "Time the indicator dashboard of regions (as /reports/ renders it) and, "
        "with --engine, the live computation behind a snapshot."
    )

    def add_arguments(self, parser):
        parser.add_argument("regions", nargs="+", help="division codes, e.g. 990102 990000")
        parser.add_argument("--period", default=None, help="YYYYQn (default: current quarter)")
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument("--engine", action="store_true", help="also time the live engine")

    def handle(self, *args, **opts):
        for code in opts["regions"]:
            t = time_dashboard(code, opts["period"], opts["repeat"])
            self.stdout.write(
                f"dashboard {t.region} {t.period}: median {t.median_ms:.1f} ms, "
                f"max {t.max_ms:.1f} ms, {t.queries} queries, {t.html_bytes} bytes"
            )
            if opts["engine"]:
                e = time_engine(code, opts["period"], max(1, opts["repeat"] // 5))
                self.stdout.write(
                    f"engine    {e.region} {e.period}: median {e.median_ms:.1f} ms, "
                    f"max {e.max_ms:.1f} ms, {e.queries} queries"
                )
