"""The one module that reads the environment.

Every setting that depends on the deployment is read here, so the whole
configuration surface is visible in one place (README → Configuration).
A variable ``NAME_FILE`` pointing at a file is read instead of ``NAME``
(Docker / systemd secrets).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = BASE_DIR / ".env"
if _env_file.exists():
    environ.Env.read_env(str(_env_file))


def secret(name: str, default: str | None = None) -> str | None:
    """Read ``NAME`` or the file named by ``NAME_FILE``."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default)
