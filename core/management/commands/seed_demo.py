from django.core.management.base import BaseCommand

from core.seeding import DEMO_PASSWORD, SeedContext, run


class Command(BaseCommand):
    help = "Build the demo county of API.md (idempotent, fixed random seed)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=2300)
        parser.add_argument("--townships", type=int, default=4)
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--seed", type=int, default=20260101)

    def handle(self, *args, **opts):
        ctx = SeedContext(
            patients=opts["patients"],
            townships=opts["townships"],
            password=opts["password"],
            seed=opts["seed"],
            stdout=self.stdout,
        )
        ran = run(ctx)
        if ran:
            self.stdout.write(self.style.SUCCESS(f"seed_demo: built {', '.join(ran)}"))
        else:
            self.stdout.write("seed_demo: demo data already present, nothing changed")
