"""``manage.py verify_audit_chain``: walk the audit hash chain end to end.

Exit status 0 when every row links to the one before; 1 (with the id of the
first broken row) when a row was changed, removed or inserted out of band.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.services import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; non-zero exit status on a break."

    def handle(self, *args, **options):
        checked, broken = verify_chain()
        if broken is not None:
            raise CommandError(
                f"Audit chain broken at row id {broken} (after {checked} intact rows).",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} rows."))
