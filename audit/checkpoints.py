"""Checkpoints of the audit chain's head, kept outside the database
(SECURITY.md G13).

The hash chain shows a changed, inserted or removed row anywhere *before*
the newest row, but not the newest rows removed (or the table truncated):
what is left is still a valid chain. So the head — the newest row's id and
hash — is written periodically (``audit.tasks.audit_checkpoint``, beat
entry in config/schedule.py) to a separate store:

- a line appended to ``AUDIT_CHECKPOINT_DIR/checkpoints.jsonl`` (mount it on
  another volume or host than the database), with an HMAC under the chain
  key so a line cannot be forged by someone without the key;
- a log line (``audit.checkpoint``), for the log shipping.

``manage.py verify_audit_chain`` then requires every checkpointed row to be
there with that hash. A checkpoint holds ids and hashes only, no personal
data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import chain_key

log = logging.getLogger("audit.checkpoint")

FILE_NAME = "checkpoints.jsonl"


class CheckpointError(Exception):
    """The checkpoint file has a line that is not a valid checkpoint."""


def checkpoint_path(directory: str | os.PathLike | None = None) -> Path:
    return Path(directory or settings.AUDIT_CHECKPOINT_DIR) / FILE_NAME


def _mac(seq: int, digest: str, at: str) -> str:
    message = f"{seq}:{digest}:{at}".encode()
    return hmac.new(chain_key(), b"checkpoint:" + message, hashlib.sha256).hexdigest()


def read_checkpoints(path: Path | None = None) -> list[dict]:
    """Every checkpoint in the file, oldest first; [] when there is none.
    Raises CheckpointError on a line that does not parse or whose MAC is wrong."""
    path = path or checkpoint_path()
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            seq, digest, at, mac = int(item["seq"]), str(item["hash"]), item["at"], item["mac"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"line {number}: not a checkpoint") from exc
        if not hmac.compare_digest(mac, _mac(seq, digest, at)):
            raise CheckpointError(f"line {number}: wrong MAC (forged or another key)")
        out.append({"seq": seq, "hash": digest, "at": at})
    return out


def checkpoint_write(path: Path | None = None) -> dict | None:
    """Append the chain's current head to the checkpoint file and the log.
    Returns the checkpoint, or None when the head is the one last written
    (nothing new since)."""
    path = path or checkpoint_path()
    head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    seq, digest = head if head else (0, "")
    existing = read_checkpoints(path)
    if existing and existing[-1]["seq"] == seq and existing[-1]["hash"] == digest:
        return None
    at = timezone.now().isoformat()
    item = {"seq": seq, "hash": digest, "at": at, "mac": _mac(seq, digest, at)}
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(item, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("audit checkpoint seq=%s hash=%s at=%s mac=%s", seq, digest, at, item["mac"])
    return item
