"""A small closed-loop load client: N threads, each with its own HTTP
session, send the requests of one endpoint and time each one.

Plain ``requests`` in threads rather than locust: locust monkey-patches the
interpreter with gevent, and this client must share a process with Django
(the plan is read through the ORM). Latency is measured around each
request on the client side, so it includes the network stack and queueing
in gunicorn, as a user would see it.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

TIMEOUT = 120  # seconds; a request slower than this counts as an error


@dataclass
class Request:
    method: str
    path: str
    json: dict | None = None
    files: dict | None = None
    data: dict | None = None


@dataclass
class Result:
    key: str
    requests: int = 0
    errors: int = 0
    statuses: dict = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    rps: float | None = None
    wall_s: float | None = None
    cpu_ms_per_request: float | None = None  # web workers + database backends
    first_error: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, min(len(sorted_ms), round(q / 100 * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


class Persona:
    """A signed-in user: a session cookie for pages, a token for the API."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        self.username = username
        self.password = password
        self.cookies: dict | None = None
        self.token: str | None = None
        self.csrf: str = ""

    def login_page(self) -> None:
        s = requests.Session()
        url = f"{self.base_url}/accounts/login/"
        s.get(url, timeout=TIMEOUT)
        self.csrf = s.cookies.get("csrftoken", "")
        r = s.post(
            url,
            data={
                "username": self.username,
                "password": self.password,
                "csrfmiddlewaretoken": self.csrf,
            },
            headers={"Referer": url},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        if r.status_code != 302 or "sessionid" not in s.cookies:
            raise RuntimeError(f"login of {self.username} failed: HTTP {r.status_code}")
        self.cookies = s.cookies.get_dict()
        self.csrf = s.cookies.get("csrftoken", self.csrf)

    def login_api(self) -> None:
        r = requests.post(
            f"{self.base_url}/api/v1/auth/token/",
            json={"username": self.username, "password": self.password},
            timeout=TIMEOUT,
        )
        if r.status_code != 200:
            raise RuntimeError(f"token of {self.username} failed: HTTP {r.status_code}")
        self.token = r.json()["token"]

    def session(self, *, api: bool) -> requests.Session:
        s = requests.Session()
        if api:
            if self.token is None:
                self.login_api()
            s.headers["Authorization"] = f"Token {self.token}"
        elif self.username:
            if self.cookies is None:
                self.login_page()
            s.cookies.update(self.cookies)
            s.headers["X-CSRFToken"] = self.csrf
            s.headers["Referer"] = f"{self.base_url}/"
        return s


def run_endpoint(
    *,
    key: str,
    base_url: str,
    persona: Persona,
    api: bool,
    make_request: Callable[[int], Request],
    total: int,
    clients: int,
    warmup: int = 2,
    max_seconds: float = 30,
    ok: tuple[int, ...] = (200,),
    cpu_probe: Callable[[], float] | None = None,
) -> Result:
    """Send ``total`` requests from ``clients`` threads after a warm-up;
    no new request starts after ``max_seconds`` (slow endpoints get fewer)."""
    result = Result(key=key)
    warm = persona.session(api=api)
    for i in range(warmup):
        try:
            _send(warm, base_url, make_request(-1 - i))
        except requests.RequestException:
            break
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        s = persona.session(api=api)
        mine: list[float] = []
        seen: Counter = Counter()
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            req = make_request(i)
            started = time.perf_counter()
            try:
                status, body = _send(s, base_url, req)
            except requests.RequestException as exc:
                status, body = 0, type(exc).__name__
            mine.append((time.perf_counter() - started) * 1000)
            seen[status] += 1
            if status not in ok and not errors:
                errors.append(f"HTTP {status} {req.method} {req.path}: {body[:300]}")
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    cpu_before = cpu_probe() if cpu_probe else None
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    cpu_used = cpu_probe() - cpu_before if cpu_probe else None
    latencies.sort()
    result.requests = len(latencies)
    result.statuses = {str(k): v for k, v in sorted(statuses.items())}
    result.errors = sum(v for k, v in statuses.items() if k not in ok)
    result.first_error = errors[0] if errors else ""
    if latencies:
        result.p50_ms = round(statistics.median(latencies), 1)
        result.p95_ms = round(percentile(latencies, 95), 1)
        result.p99_ms = round(percentile(latencies, 99), 1)
        result.max_ms = round(latencies[-1], 1)
        result.rps = round(len(latencies) / wall, 1)
        result.wall_s = round(wall, 2)
        if cpu_used is not None:
            result.cpu_ms_per_request = round(cpu_used * 1000 / len(latencies), 1)
    return result


def _send(s: requests.Session, base_url: str, req: Request) -> tuple[int, str]:
    r = s.request(
        req.method,
        base_url + req.path,
        json=req.json,
        files=req.files,
        data=req.data,
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    r.content  # read the whole body: its transfer is part of the time  # noqa: B018
    return r.status_code, r.text if r.status_code >= 300 else ""
