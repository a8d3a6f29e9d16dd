"""``manage.py seed_province``: a province-scale data set for benchmarks.

Separate from ``seed_demo`` (the demo county of API.md): this one writes
hundreds of thousands of patients and millions of follow-ups with
PostgreSQL COPY (bench.province). Idempotent: run again with the same
parameters it changes nothing; with other parameters it refuses.
"""

from django.core.management.base import BaseCommand, CommandError

from bench.province import BENCH_PASSWORD, SeedError, build


class Command(BaseCommand):
    help = "Generate a province-scale data set with PostgreSQL COPY (docs/benchmarks.md)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=500_000)
        parser.add_argument("--townships", type=int, default=300)
        parser.add_argument("--seed", type=int, default=20260101)
        parser.add_argument("--password", default=BENCH_PASSWORD)
        parser.add_argument("--jobs", type=int, default=2, help="generator processes (default 2)")

    def handle(self, *args, **opts):
        try:
            counts = build(
                patients=opts["patients"],
                townships=opts["townships"],
                seed=opts["seed"],
                password=opts["password"],
                jobs=opts["jobs"],
                stdout=self.stdout,
            )
        except SeedError as exc:
            raise CommandError(str(exc)) from exc
        if counts.get("already_present"):
            self.stdout.write("seed_province: data set already present, nothing changed")
            return
        seconds = counts.pop("seconds")
        summary = ", ".join(f"{n:,} {name}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"seed_province: {summary} in {seconds:.0f}s"))
