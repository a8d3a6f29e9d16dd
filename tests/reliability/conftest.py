"""Real servers for the fault tests (SECURITY.md → Reliability 4.3).

Tests that stop or restart Redis or PostgreSQL start their own instance — a
redis-server on a free port, a throwaway PostgreSQL cluster made by initdb —
and never touch the machine's shared Redis (6379) or PostgreSQL (5432). The
application runs in real subprocesses (gunicorn, ``celery -A config
worker``) with ``config.settings.test`` and ``CELERY_TEST_WORKER=1`` (a real
broker from ``CELERY_BROKER_URL``; see config/settings/test.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _pg_bin() -> Path:
    """The PostgreSQL server binaries: ``PG_BIN``, else ``pg_config --bindir``
    when it has initdb, else the newest ``/usr/lib/postgresql/<version>/bin``."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out and (Path(out) / "initdb").exists():
                return Path(out)
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: [int(x) if x.isdigit() else x for x in p.parent.name.split(".")],
    )
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class RedisServer:
    """A throwaway redis-server on a free loopback port; stop/start keep the port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--maxmemory-policy", "noeviction",
                "--dir", str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_until(lambda: _port_open(self.port), timeout=10, what="redis-server")

    def stop(self) -> None:
        _stop(self.proc)
        wait_until(lambda: not _port_open(self.port), timeout=10, what="redis-server to stop")


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PgCluster:
    """A throwaway PostgreSQL cluster (initdb, trust auth) on a free port."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="jft-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c full_page_writes=off -c max_connections=60"
        )
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w",
                          "-l", str(self.dir / "log"), "start"]),
            check=True,
            capture_output=True,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            check=False,
            capture_output=True,
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def app_env(*, database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_TEST_WORKER": "1",
        "CELERY_BROKER_URL": broker_url,
        "PYTHONPATH": str(ROOT),
        "PYTHONWARNINGS": "ignore",
    }
    env.update(extra)
    return env


class Gunicorn:
    """The WSGI app in gunicorn (threads, like production) on a free port."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int = 2, threads: int = 8):
        self.port = free_port()
        self.log = workdir / f"gunicorn-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(workers),
                "--threads", str(threads),
                "--timeout", "60",
                "--error-logfile", str(self.log),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_until(self._up, timeout=60, interval=0.25, what=f"gunicorn (log {self.log})")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
        try:
            requests.get(f"{self.base}/healthz", timeout=2)
        except requests.RequestException:
            return False
        return True

    def stop(self) -> None:
        _stop(self.proc)


class CeleryWorker:
    """``celery -A config worker`` (prefork, one child) as a subprocess."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str):
        self.log = workdir / f"worker-{name}.log"
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "celery"), "-A", "config", "worker",
                "--loglevel", "INFO", "--concurrency", "1", "--pool", "prefork",
                "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--logfile", str(self.log),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_until(self._ready, timeout=60, interval=0.25, what=f"celery worker (log {self.log})")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.log.read_text()[-3000:]}")
        return self.log.exists() and " ready." in self.log.read_text()

    def children(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in out.stdout.split()]

    def stop(self, sig=signal.SIGTERM) -> None:
        _stop(self.proc, sig)


def celery_call(env: dict[str, str], task: str, *args) -> None:
    """Publish one task to the broker in ``env`` (as beat or a web process would)."""
    import json

    subprocess.run(
        [str(VENV_BIN / "celery"), "-A", "config", "call", task, "--args", json.dumps(list(args))],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    _stop(server.proc)


@pytest.fixture
def test_database_url(transactional_db) -> str:
    """The URL of this run's test database (subprocesses share its rows)."""
    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


@pytest.fixture
def processes():
    """Processes a test starts; stopped at teardown whatever happened."""
    started: list = []
    yield started
    for proc in reversed(started):
        with contextlib.suppress(Exception):
            proc.stop()
