"""A notification channel for the fault tests, run inside real workers
(``TEST_NOTIFICATION_BACKEND=tests.reliability.backends.FileBackend``).

Each send appends one line to ``RELIAB_EFFECTS_FILE``: the effect the tests
count. With ``RELIAB_SEND_SLEEP`` set, the first send (no ``started`` marker
in ``RELIAB_MARKER_DIR`` yet) marks its start and sleeps *before* the effect:
the window in which the test kills the worker. The delivery row written just
before the send is then still uncommitted, as in a real crash.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.notify import Message


class FileBackend:
    channel = "sms"

    def send(self, message: Message) -> None:
        sleep = float(os.environ.get("RELIAB_SEND_SLEEP", "0") or 0)
        marker_dir = os.environ.get("RELIAB_MARKER_DIR")
        if sleep and marker_dir:
            marker = Path(marker_dir) / "started"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                time.sleep(sleep)
        with open(os.environ["RELIAB_EFFECTS_FILE"], "a", encoding="utf-8") as out:
            out.write(f"{message.recipient}\t{message.text}\n")
