"""R9 (G22): PostgreSQL restarted under load.

A copy of this test database (pg_dump of the world and its patients) goes
into a throwaway cluster on a free port; gunicorn serves the app from it
(persistent connections with CONN_HEALTH_CHECKS, connect_timeout 5 s). Under
a steady load of reads, follow-up writes and ``/healthz``, the cluster is
stopped for a few seconds and started again:

- during the outage every request answers within 5 s (no hang) with 503:
  ``/healthz``, the API with a token, and a signed-in browser's page and API
  request (their session cannot be loaded: Django turns that error into a
  500 inside the session middleware, core.middleware makes it the 503);
- within 30 s after the database is back every endpoint answers 200/201
  again, without restarting anything;
- no half-written business rows: every follow-up answered 201 is stored with
  its history row and its audit row, and nothing else was stored.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter

import psycopg
import pytest
import requests
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import PASSWORD
from tests.reliability.conftest import PG_BIN, Gunicorn, PgCluster, app_env, wait_until
from tests.reliability.test_concurrent_followups import _form

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FAIL_FAST = 5.0
RECOVER_WITHIN = 30.0
OUTAGE = 6.0


def _copy_database(target: PgCluster) -> str:
    """The test database's schema and rows, copied into ``target``."""
    s = connection.settings_dict
    src = ["-h", s.get("HOST") or "127.0.0.1", "-p", str(s.get("PORT") or 5432), "-U", s["USER"]]
    subprocess.run(
        [
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(target.port),
            "-U",
            "postgres",
            "jft",
        ],
        check=True,
        capture_output=True,
    )
    dump = subprocess.run(
        [str(PG_BIN / "pg_dump"), *src, "--no-owner", "--no-privileges", s["NAME"]],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", target.url("jft")],
        input=dump.stdout,
        check=True,
        capture_output=True,
    )
    return target.url("jft")


def _signed_in_browser(base: str, username: str) -> requests.Session:
    """A browser session signed in through the login form."""
    browser = requests.Session()
    browser.get(f"{base}/accounts/login/", timeout=30)
    login = browser.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 302, login.text[:300]
    assert browser.get(f"{base}/patients/", timeout=30).status_code == 200
    return browser


class Load:
    """One loop per kind of request, recording (t, kind, status, seconds):
    token API read and write, ``/healthz``, and a signed-in browser's page
    and API read (session cookie)."""

    KINDS = ("read", "write", "health", "page", "session_api")

    def __init__(self, base: str, token: str, patient_id: str, browser: requests.Session):
        self.base, self.patient_id, self.browser = base, patient_id, browser
        self.headers = {"Authorization": f"Token {token}"}
        self.samples: list[tuple[float, str, int, float]] = []
        self.created: set[str] = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(k,)) for k in self.KINDS]

    def _request(self, kind: str) -> requests.Response:
        if kind == "read":
            return requests.get(
                f"{self.base}/api/v1/patients/{self.patient_id}/", headers=self.headers, timeout=30
            )
        if kind == "health":
            return requests.get(f"{self.base}/healthz", timeout=30)
        if kind == "page":
            return self.browser.get(f"{self.base}/patients/", allow_redirects=False, timeout=30)
        if kind == "session_api":
            return self.browser.get(f"{self.base}/api/v1/patients/{self.patient_id}/", timeout=30)
        body = {"patient": self.patient_id, **_form(timezone.localdate())}
        return requests.post(
            f"{self.base}/api/v1/followups/", json=body, headers=self.headers, timeout=30
        )

    def _loop(self, kind: str) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                response = self._request(kind)
                status = response.status_code
                if kind == "write" and status == 201:
                    with self.lock:
                        self.created.add(response.json()["id"])
            except requests.RequestException:
                status = 0  # no answer at all (reset, timeout)
            with self.lock:
                self.samples.append((started, kind, status, time.monotonic() - started))
            time.sleep(0.05)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def ok_since(self, kind: str, since: float) -> bool:
        want = 201 if kind == "write" else 200
        with self.lock:
            return any(t >= since and k == kind and s == want for t, k, s, _ in self.samples)


def test_app_fails_fast_while_postgres_is_down_and_recovers_by_itself(
    world, patients, transactional_db, workdir, processes
):
    cluster = PgCluster()
    try:
        cluster.start()
        url = _copy_database(cluster)
        web = Gunicorn(app_env(database_url=url, broker_url="memory://"), workdir)
        processes.append(web)
        token = requests.post(
            f"{web.base}/api/v1/auth/token/",
            json={"username": world.users.doctor_a.username, "password": PASSWORD},
            timeout=30,
        ).json()["token"]

        browser = _signed_in_browser(web.base, world.users.doctor_a.username)

        with Load(web.base, token, str(patients.pA1.pk), browser) as load:
            wait_until(
                lambda: all(load.ok_since(k, 0) for k in Load.KINDS),
                timeout=30,
                what="steady load",
            )
            cluster.stop("fast")  # returns once the server is down (pg_ctl -w)
            down_at = time.monotonic()
            time.sleep(OUTAGE)
            starting_at = time.monotonic()
            cluster.start()
            up_at = time.monotonic()
            for kind in Load.KINDS:
                wait_until(
                    lambda kind=kind: load.ok_since(kind, up_at),
                    timeout=RECOVER_WITHIN + 10,
                    interval=0.2,
                    what=f"{kind} to recover",
                )
            recovered = {
                kind: min(
                    t + d
                    for t, k, s, d in load.samples
                    if k == kind and t >= up_at and s in (200, 201)
                )
                - up_at
                for kind in Load.KINDS
            }
        # "during the outage": sent after the stop and answered before the start
        during = [(k, s, d) for t, k, s, d in load.samples if t >= down_at and t + d <= starting_at]
        slowest = max(d for _, _, d in during)
        statuses = Counter((k, s) for k, s, _ in during)
        print(
            f"\nR9 during the outage {dict(statuses)}; slowest {slowest:.2f}s; recovered {recovered}"
        )
        assert during, "no request was answered during the outage"
        assert slowest <= FAIL_FAST, statuses
        assert {k for k, _, _ in during} == set(Load.KINDS), statuses
        # every kind of request, with a token or a session, answers 503
        assert {s for _, s, _ in during} == {503}, statuses
        assert max(recovered.values()) <= RECOVER_WITHIN, recovered

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as db:
            stored = {str(r[0]) for r in db.execute("SELECT id FROM followups_followup")}
            history = {str(r[0]) for r in db.execute("SELECT id FROM followups_historicalfollowup")}
            audited = {
                r[0]
                for r in db.execute(
                    "SELECT detail->>'followup' FROM audit_auditevent WHERE action = 'followup.create'"
                )
            }
        assert stored == load.created
        assert stored <= history
        assert stored <= audited
    finally:
        for proc in processes:
            proc.stop()
        cluster.destroy()
