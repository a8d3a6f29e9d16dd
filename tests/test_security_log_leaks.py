"""No personal data in logs or audit rows (SECURITY.md G12, G15).

Runs the security-relevant flows with every logger captured at DEBUG, then
scans the captured text and every audit row for the fixtures' ID numbers,
phones and names.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from accounts.services import breakglass_request
from accounts.tests import factories as af
from audit.models import AuditEvent
from patients.selectors import patient_get_for_user
from patients.services import patient_record_search, patient_record_view

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_logs_and_audit_rows_hold_no_personal_data(caplog, world, patients):
    caplog.set_level(logging.DEBUG)
    u = world.users
    people = [patients.pA1, patients.pB1, patients.pC1]
    secrets = set()
    for p in people:
        secrets |= {p.id_number, p.name, p.guardian.phone, p.guardian.name}
    secrets.discard("")

    # sign-in flows: success, failure with an ID number typed as the username, lockout
    client = Client()
    client.post(reverse("accounts:login"), {"username": "doctor_a", "password": af.PASSWORD})
    for _ in range(5):
        Client().post(
            reverse("accounts:login"), {"username": patients.pB1.id_number, "password": "x"}
        )
    # reads, denials, searches, break the glass, audit pages
    patient_record_view(user=u.doctor_a, patient=patients.pA1)
    with pytest.raises(Exception):  # noqa: B017, PT011 - Http404
        patient_get_for_user(user=u.police_a, pk=patients.pB1.pk)
    patient_record_search(user=u.doctor_a, term=patients.pB1.id_number, count=0)
    patient_record_search(user=u.doctor_a, term=patients.pB1.name, count=0)
    breakglass_request(
        by=u.doctor_a,
        id_type="resident_id",
        id_number=patients.pB1.id_number,
        reason="急诊收治，需核对既往用药情况",
    )
    client.get(reverse("audit:patient-access", args=[patients.pA1.pk]))
    _key, key = af.api_key("公安系统", world.org.ps_a1, Role.POLICE, u.police_a)
    Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Api-Key {key}")
    Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Api-Key {key}x")
    auditor = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    af.login(client, auditor)
    client.get(reverse("audit:event-list"))

    logged = caplog.text
    assert "login failed" in logged  # the capture works
    leaks = sorted(s for s in secrets if s in logged)
    assert leaks == []
    assert key not in logged

    audit_text = " ".join(
        f"{e.actor_username} {e.object_type} {e.object_id} {e.detail}"
        for e in AuditEvent.objects.all()
    )
    assert sorted(s for s in secrets if s in audit_text) == []
    assert key not in audit_text


# --- task messages ----------------------------------------------------------------


class TaskMessages:
    """Every Celery task message of a run: the args and kwargs of each task
    published to the broker (``before_task_publish``) or run in-process in
    eager mode (``task_prerun``), and the outbox payloads the tasks carry
    by id."""

    def __init__(self):
        self.messages: list[tuple[str, object]] = []

    def _published(self, sender=None, body=None, **_kw):
        self.messages.append((str(sender), body))

    def _run(self, sender=None, args=None, kwargs=None, **_kw):
        self.messages.append((getattr(sender, "name", str(sender)), (args, kwargs)))

    def __enter__(self):
        from celery.signals import before_task_publish, task_prerun

        before_task_publish.connect(self._published, weak=False)
        task_prerun.connect(self._run, weak=False)
        return self

    def __exit__(self, *exc):
        from celery.signals import before_task_publish, task_prerun

        before_task_publish.disconnect(self._published)
        task_prerun.disconnect(self._run)

    def text(self) -> str:
        from core.models import OutboxMessage

        outbox = [(m.topic, m.payload) for m in OutboxMessage.objects.all()]
        return repr(self.messages + outbox)


def leaks_in(text: str, secrets) -> list[str]:
    return sorted(s for s in secrets if s and s in text)


def _secrets(people) -> set[str]:
    out = set()
    for p in people:
        out |= {p.id_number, p.name, p.phone, p.guardian.phone, p.guardian.name}
    out.discard("")
    out.discard(None)
    return out


def test_task_messages_carry_ids_only(world, patients, django_capture_on_commit_callbacks):
    """A high-risk follow-up (alerts to police and governance, delivered by
    tasks through the outbox), an incident and a reconciliation upload:
    every task message of the run holds ids, no name, ID number or phone."""
    from followups.tests.factories import incident, record
    from referrals.services.reconciliation import reconciliation_run
    from referrals.tests import factories as rf

    u = world.users
    people = [patients.pA1, patients.pB1, patients.pC1]
    with TaskMessages() as seen, django_capture_on_commit_callbacks(execute=True):
        record(by=u.doctor_a, patient=patients.pA1, risk_level=4)
        incident(by=u.police_a, patient=patients.pA1)
        data = rf.csv_bytes(
            [{"姓名": patients.pB1.name, "身份证号": patients.pB1.id_number}],
            ["姓名", "身份证号"],
        )
        reconciliation_run(by=u.doctor_b, partner="police", file_name="l", data=data)
    assert seen.messages  # the capture works: the alerts went through tasks
    assert leaks_in(seen.text(), _secrets(people)) == []


def test_the_task_message_scan_finds_a_planted_leak(world, patients):
    """Self-test: a task sent with a name and an ID number is caught."""
    from config.celery import app

    @app.task(name="tests.leak_probe")
    def leak_probe(name, id_number=None):
        return None

    with TaskMessages() as seen:
        leak_probe.delay(patients.pA1.name, id_number=patients.pA1.id_number)
    assert leaks_in(seen.text(), _secrets([patients.pA1])) == sorted(
        {patients.pA1.name, patients.pA1.id_number}
    )


# --- the web server's access log --------------------------------------------------


def _access_line(fmt: str, *, path: str, query: str, referer: str) -> str:
    """One access-log line as gunicorn writes it with ``fmt``."""
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("access_log_format", fmt)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"{path}?{query}",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "test",
    }
    resp = SimpleNamespace(status="200 OK", sent=512, headers=[])
    req = SimpleNamespace(headers=[])
    atoms = Logger(cfg).atoms(resp, req, environ, timedelta(milliseconds=20))
    return cfg.access_log_format % atoms


def test_the_access_log_writes_no_query_string(patients):
    """gunicorn (config/gunicorn.py, used by docker-compose.yml, the
    Dockerfile and scripts/run.sh) logs the path, never the query or the
    referer, where a searched name or ID number could be."""
    from pathlib import Path

    from config import gunicorn as conf

    number, name = patients.pA1.id_number, patients.pA1.name
    from urllib.parse import quote

    query = f"q={number}&name={quote(name)}"
    line = _access_line(
        conf.access_log_format, path="/patients/", query=query, referer=f"/patients/?{query}"
    )
    assert "/patients/" in line and " 200 " in line
    assert number not in line and quote(name) not in line
    for atom in ("%(r)s", "%(q)s", "%(f)s"):
        assert atom not in conf.access_log_format
    # self-test: gunicorn's default format would have written it
    default = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
    assert number in _access_line(default, path="/patients/", query=query, referer="-")
    root = Path(__file__).resolve().parent.parent
    for launcher in ("docker-compose.yml", "Dockerfile", "scripts/run.sh"):
        text = (root / launcher).read_text()
        assert "python:config.gunicorn" in text, launcher
        assert "access-logformat" not in text, launcher
