"""``manage.py verify_audit_chain``: walk the audit hash chain end to end and
compare it with the checkpoints kept outside the database (SECURITY.md G13).

Exit status 0 when every row links to the one before, hashes right (by its
own hash version) and every checkpointed row is still there with its hash;
1 naming the first broken row when a row was changed, removed or inserted
out of band, or when the newest rows were removed or the table truncated
(a checkpoint names a row that is gone), or when the checkpoint file has a
forged line.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import CheckpointError, checkpoint_path, read_checkpoints
from audit.services import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain against its checkpoints; exit 1 on a break."

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints",
            help="checkpoint file (default: AUDIT_CHECKPOINT_DIR/checkpoints.jsonl)",
        )

    def handle(self, *args, **options):
        path = Path(options["checkpoints"]) if options["checkpoints"] else checkpoint_path()
        try:
            checkpoints = read_checkpoints(path)
        except CheckpointError as exc:
            raise CommandError(f"Checkpoint file {path}: {exc}", returncode=1) from exc
        report = verify_chain({c["seq"]: c["hash"] for c in checkpoints})
        if not report.ok:
            raise CommandError(
                f"Audit chain broken at row id {report.broken}: {report.problem} "
                f"(after {report.checked} intact rows).",
                returncode=1,
            )
        if not checkpoints:
            self.stderr.write(
                f"No checkpoint in {path}: removal of the newest rows cannot be detected."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {report.checked} rows, "
                f"{report.checkpoints_matched} of {len(checkpoints)} checkpoints matched."
            )
        )
