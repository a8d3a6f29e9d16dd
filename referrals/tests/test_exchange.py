"""Exchange packages: the partner's field set exactly, a manifest that
verifies, one run per period, immediate risk-3+ pushes, delivery with
back-off per endpoint."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import ssl
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.tests.factories import export, grant_export, login
from core import crypto
from core.models import TaskRun
from followups.tests import factories as ff
from patients.models import Patient
from referrals import rules
from referrals.models import ExchangePartner, ExchangeRun, RunStatus
from referrals.services import exchange as svc
from referrals.tests import factories as rf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TODAY = date(2026, 11, 22)
Q3 = rules.Period("2026Q3", date(2026, 7, 1), date(2026, 9, 30))


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


@pytest.fixture
def police_partner(world, more, tmp_path):
    return rf.partner(by=more.prevention, department="police", folder=str(tmp_path / "police"))


def test_police_package_has_exactly_the_police_field_set_and_no_diagnosis(
    world, patients, police_partner
):
    ff.record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    run = svc.exchange_build(partner=police_partner, kind="scheduled", period=Q3)
    rows = read_csv(run.get_content())
    assert rows[0] == [h for _k, h in rules.columns_for("police")]
    assert run.manifest["columns"] == [k for k, _h in rules.columns_for("police")]
    assert not set(run.manifest["columns"]) & rules.CLINICAL_KEYS
    text = run.get_content().decode("utf-8-sig")
    for word in ("精神分裂症", "schizophrenia", "诊断", "利培酮"):
        assert word not in text
    # county A only: pA1 and pB1, never pC1 of county C
    names = {r[2] for r in rows[1:]}
    assert names == {"甲一", "乙一"}
    row = next(r for r in rows[1:] if r[2] == "甲一")
    assert row[1] == "\t" + patients.pA1.id_number  # ID number kept as text
    assert row[rows[0].index("危险性等级")] == "3"
    assert run.rows == 2 and run.counts["high_risk"] == 1


@pytest.mark.parametrize(
    "department, present, absent",
    [
        ("civil_affairs", {"poverty", "guardian_reward", "in_community_rehab"}, {"risk_level"}),
        (
            "disabled_federation",
            {"certificate", "certificate_grade", "in_community_rehab"},
            {"risk_level", "poverty"},
        ),
        ("governance", {"risk_level", "classification", "incidents"}, {"poverty"}),
    ],
)
def test_each_partner_gets_its_minimum_necessary_columns(
    world, patients, more, tmp_path, department, present, absent
):
    partner = rf.partner(by=more.prevention, department=department, folder=str(tmp_path))
    run = svc.exchange_build(partner=partner, kind="scheduled", period=Q3)
    columns = set(run.manifest["columns"])
    assert columns == {k for k, _h in rules.columns_for(department)}
    assert present <= columns and not absent & columns
    assert not columns & rules.CLINICAL_KEYS


def test_the_manifest_verifies_and_a_tampered_package_does_not(patients, police_partner):
    run = svc.exchange_build(partner=police_partner, kind="scheduled", period=Q3)
    key = ExchangePartner.objects.get(pk=police_partner.pk).signing_key
    content = run.get_content()
    manifest = run.manifest
    assert manifest["sha256"] == run.sha256 == rules.sha256_hex(content)
    assert manifest["period"] == "2026Q3" and manifest["counts"]["rows"] == 2
    assert rules.verify_package(manifest, content, key)
    assert not rules.verify_package(manifest, content + b"x", key)
    assert not rules.verify_package({**manifest, "period": "2026Q2"}, content, key)
    assert not rules.verify_package(manifest, content, "another-key")


def test_xlsx_and_json_packages(world, patients, more, tmp_path):
    xlsx_partner = rf.partner(by=more.prevention, department="police", fmt="xlsx", name="x")
    run = svc.exchange_build(partner=xlsx_partner, kind="scheduled", period=Q3)
    ws = load_workbook(io.BytesIO(run.get_content())).active
    header = [c.value for c in ws[1]]
    id_col = header.index("身份证号") + 1
    assert {ws.cell(row=r, column=id_col).number_format for r in (2, 3)} == {"@"}
    assert {ws.cell(row=r, column=id_col).value for r in (2, 3)} == {
        patients.pA1.id_number,
        patients.pB1.id_number,
    }
    json_partner = rf.partner(by=more.prevention, department="civil_affairs", fmt="json")
    run = svc.exchange_build(partner=json_partner, kind="scheduled", period=Q3)
    rows = json.loads(run.get_content())
    assert set(rows[0]) == {k for k, _h in rules.columns_for("civil_affairs")}
    assert {r["poverty"] for r in rows} == {"none"}


def test_one_run_per_partner_and_period_whatever_the_number_of_beats(police_partner, patients):
    first = svc.exchange_build_due(today=TODAY)
    second = svc.exchange_build_due(today=TODAY)
    assert (first["built"], second["built"], second["skipped"]) == (1, 0, 1)
    run = ExchangeRun.objects.get()
    assert (run.period, run.kind, run.status) == ("2026Q3", "scheduled", RunStatus.PENDING)
    assert TaskRun.objects.filter(job="referrals.exchange_build", status="succeeded").count() == 1


def test_half_yearly_partners_get_the_last_half_year(world, more, patients):
    partner = rf.partner(by=more.prevention, department="disabled_federation")
    assert partner.schedule == "half_yearly"
    svc.exchange_build_due(today=TODAY)
    assert ExchangeRun.objects.get(partner=partner).period == "2026H1"


def test_folder_delivery_writes_package_and_manifest(patients, police_partner):
    run = svc.exchange_build(partner=police_partner, kind="scheduled", period=Q3)
    assert svc.exchange_deliver_due()["delivered"] == 1
    folder = Path(police_partner.folder_path)
    assert (folder / run.file_name).read_bytes() == run.get_content()
    manifest = json.loads((folder / f"{run.file_name}.manifest.json").read_text("utf-8"))
    assert manifest["hmac"] == run.manifest["hmac"]
    run.refresh_from_db()
    assert (run.status, run.attempts) == (RunStatus.DELIVERED, 1)


def test_risk_3_goes_to_police_at_once(world, patients, more, tmp_path):
    partner = rf.partner(
        by=more.prevention,
        department="police",
        folder=str(tmp_path),
        immediate_high_risk=True,
    )
    svc.exchange_high_risk()  # starts watching
    assert not ExchangeRun.objects.exists()
    ff.record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    ff.record(by=world.users.doctor_b, patient=patients.pB1, risk_level=1)
    ff.record(by=world.users.doctor_c, patient=patients.pC1, risk_level=4)  # other county
    assert svc.exchange_high_risk()["built"] == 1
    run = ExchangeRun.objects.get(partner=partner)
    assert run.kind == "high_risk" and run.rows == 1
    rows = read_csv(run.get_content())
    assert [r[2] for r in rows[1:]] == ["甲一"]
    assert svc.exchange_high_risk()["built"] == 0  # nothing new since


# --------------------------------------------------------------------------
# HTTPS delivery to a local TLS endpoint that fails three times
# --------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path, str]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(tz=UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(tz=UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, pem.decode()


class FlakyEndpoint:
    """An HTTPS endpoint on loopback that answers 503 ``failures`` times, then
    stores packages (deduplicated by Idempotency-Key) and answers 201."""

    def __init__(self, tmp_path: Path, failures: int = 3):
        cert_file, key_file, self.ca_pem = _self_signed(tmp_path)
        self.failures = failures
        self.requests: list[dict] = []
        self.stored: dict[str, bytes] = {}
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.requests.append({k.lower(): v for k, v in self.headers.items()})
                if len(endpoint.requests) <= endpoint.failures:
                    self.send_response(503)
                    self.end_headers()
                    return
                endpoint.stored.setdefault(self.headers["Idempotency-Key"], body)
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/inbox"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(tmp_path):
    ep = FlakyEndpoint(tmp_path, failures=3)
    yield ep
    ep.close()


def test_https_delivery_that_fails_three_times_is_delivered_once_with_back_off(
    world, patients, more, endpoint
):
    partner = rf.partner(
        by=more.prevention,
        department="police",
        delivery="https",
        endpoint_url=endpoint.url,
        ca_certificate=endpoint.ca_pem,
    )
    run = svc.exchange_build(partner=partner, kind="scheduled", period=Q3)
    key = ExchangePartner.objects.get(pk=partner.pk).signing_key
    t0 = timezone.now()
    waits = []
    now = t0
    for _ in range(3):
        result = svc.exchange_deliver_due(now=now)
        assert result["failed_attempts"] == 1
        partner.refresh_from_db()
        waits.append((partner.backoff_until - now).total_seconds())
        # calling again before the back-off has passed sends nothing (no storm)
        assert svc.exchange_deliver_due(now=now + timedelta(seconds=1))["failed_attempts"] == 0
        now = partner.backoff_until + timedelta(seconds=1)
    assert waits == [60, 120, 240]  # exponential back-off per endpoint
    assert len(endpoint.requests) == 3
    assert svc.exchange_deliver_due(now=now)["delivered"] == 1
    assert svc.exchange_deliver_due(now=now + timedelta(hours=1)) == {
        "delivered": 0,
        "failed_attempts": 0,
        "gave_up": 0,
    }
    assert len(endpoint.requests) == 4
    assert list(endpoint.stored) == [str(run.pk)]  # delivered once
    run.refresh_from_db()
    assert (run.status, run.attempts, run.last_error) == (RunStatus.DELIVERED, 4, "")
    # what arrived verifies with the partner's key
    headers = endpoint.requests[-1]
    manifest = json.loads(base64.b64decode(headers["x-jft-manifest"]))
    assert rules.verify_package(manifest, endpoint.stored[str(run.pk)], key)
    partner.refresh_from_db()
    assert (partner.consecutive_failures, partner.backoff_until) == (0, None)


def test_an_endpoint_backing_off_holds_all_its_packages(world, patients, more, endpoint):
    partner = rf.partner(
        by=more.prevention,
        department="police",
        delivery="https",
        endpoint_url=endpoint.url,
        ca_certificate=endpoint.ca_pem,
        immediate_high_risk=True,
    )
    svc.exchange_build(partner=partner, kind="scheduled", period=Q3)
    svc.exchange_build(
        partner=partner, kind="scheduled", period=rules.Period("2026Q2", Q3.start, Q3.end)
    )
    svc.exchange_deliver_due()
    assert len(endpoint.requests) == 1  # the first failure stops the queue


def test_an_untrusted_certificate_is_a_failed_attempt(world, patients, more, endpoint):
    partner = rf.partner(
        by=more.prevention, department="police", delivery="https", endpoint_url=endpoint.url
    )
    run = svc.exchange_build(partner=partner, kind="scheduled", period=Q3)
    assert svc.exchange_deliver_due()["failed_attempts"] == 1
    run.refresh_from_db()
    assert "CERTIFICATE_VERIFY_FAILED" in run.last_error or "SSL" in run.last_error
    assert endpoint.requests == []


def test_a_package_gives_up_after_the_maximum_attempts(world, patients, more, settings, endpoint):
    settings.EXCHANGE_MAX_ATTEMPTS = 2
    partner = rf.partner(
        by=more.prevention,
        department="police",
        delivery="https",
        endpoint_url=endpoint.url,
        ca_certificate=endpoint.ca_pem,
    )
    run = svc.exchange_build(partner=partner, kind="scheduled", period=Q3)
    now = timezone.now()
    svc.exchange_deliver_due(now=now)
    assert svc.exchange_deliver_due(now=now + timedelta(hours=2))["gave_up"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    svc.exchange_redeliver(run_id=run.pk, by=more.prevention)
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING


def test_partner_settings_are_checked(more):
    from core.errors import DomainError

    with pytest.raises(DomainError) as err:
        rf.partner(by=more.prevention, delivery="https", endpoint_url="http://x.example/")
    assert err.value.field == "endpoint_url"
    with pytest.raises(DomainError) as err:
        rf.partner(by=more.prevention, department="civil_affairs", immediate_high_risk=True)
    assert err.value.field == "immediate_high_risk"


def test_signing_key_is_stored_encrypted(more):
    partner = rf.partner(by=more.prevention)
    with connection.cursor() as cur:
        cur.execute("SELECT signing_key FROM referrals_exchangepartner WHERE id = %s", [partner.pk])
        raw = cur.fetchone()[0]
    assert partner.signing_key not in raw and raw.startswith("t1$")


def test_patients_changing_status_in_the_period_are_included(world, patients, police_partner):
    Patient.objects.filter(pk=patients.pB1.pk).update(
        status="deceased", status_changed_at=timezone.make_aware(datetime(2026, 8, 1))
    )
    Patient.objects.filter(pk=patients.pA1.pk).update(
        status="moved_out", status_changed_at=timezone.make_aware(datetime(2026, 1, 1))
    )
    run = svc.exchange_build(partner=police_partner, kind="scheduled", period=Q3)
    rows = read_csv(run.get_content())
    assert [(r[2], r[rows[0].index("管理状态")]) for r in rows[1:]] == [("乙一", "死亡")]


def test_packages_stream_rows_without_model_instances(world, patients, police_partner, monkeypatch):
    from django.db.models.signals import post_init

    monkeypatch.setattr(svc, "CHUNK_ROWS", 1)  # a cursor fetch per row
    ff.record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    rows = svc.package_rows(police_partner, period=Q3)
    assert not isinstance(rows, list)  # a generator: nothing is held
    made = []

    def count(sender, **kwargs):
        made.append(sender)

    post_init.connect(count, sender=Patient)
    try:
        content, manifest = svc.build_package(
            police_partner, kind="scheduled", period=Q3, rows=rows
        )
    finally:
        post_init.disconnect(count, sender=Patient)
    assert made == []
    assert manifest["counts"] == {
        "rows": 2,
        "by_status": {"active": 2},
        "high_risk": 1,
    }
    assert manifest["sha256"] == rules.sha256_hex(content)
    parsed = read_csv(content)
    assert [r[2] for r in parsed[1:]] == ["甲一", "乙一"]
    # the labels of a CSV, the codes of JSON
    assert parsed[1][parsed[0].index("管理状态")] == "在管"
    assert parsed[1][parsed[0].index("监护人电话")] == "\t13800000000"


def test_streamed_writers_give_the_bytes_of_the_whole_list():
    from referrals import tabular

    columns = (("id_number", "身份证号"), ("name", "姓名"), ("birth_date", "出生日期"))
    rows = [
        {"id_number": "990102198001010011", "name": "甲,一", "birth_date": date(1980, 1, 1)},
        {"id_number": "", "name": '乙"一', "birth_date": None},
    ]
    expected_json = json.dumps(
        [{**r, "birth_date": r["birth_date"] and r["birth_date"].isoformat()} for r in rows],
        ensure_ascii=False,
    ).encode("utf-8")
    out = io.BytesIO()
    sink = tabular.HashingSink(out)
    tabular.stream_json(columns, iter(rows), sink)
    assert out.getvalue() == expected_json
    assert sink.sha256.hexdigest() == rules.sha256_hex(expected_json)
    assert sink.size == len(expected_json)
    text = tabular.write_csv(columns, rows).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        ["身份证号", "姓名", "出生日期"],
        ["\t990102198001010011", "甲,一", "1980-01-01"],
        ["", '乙"一', ""],
    ]
    # an XLSX written through the (unseekable) sink is a valid workbook
    out = io.BytesIO()
    sink = tabular.HashingSink(out)
    tabular.stream_xlsx(columns, iter(rows), sink)
    assert sink.sha256.hexdigest() == rules.sha256_hex(out.getvalue())
    ws = load_workbook(io.BytesIO(out.getvalue())).active
    assert [c.value for c in ws[2]] == ["990102198001010011", "甲,一", "1980-01-01"]
    assert ws.cell(row=2, column=1).number_format == "@"


def test_an_alert_committed_late_with_an_earlier_time_is_still_pushed(
    world, patients, more, tmp_path
):
    """The push remembers which alerts it sent, not the newest time it saw:
    an alert whose transaction committed after a later alert was sent (so
    its raised_at is earlier) still goes out, once."""
    from followups.models import Alert

    partner = rf.partner(
        by=more.prevention, department="police", folder=str(tmp_path), immediate_high_risk=True
    )
    start = timezone.now()
    svc.exchange_high_risk(now=start)  # starts watching
    ff.record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    Alert.objects.filter(patient=patients.pA1).update(raised_at=start + timedelta(seconds=50))
    assert svc.exchange_high_risk(now=start + timedelta(seconds=60))["built"] == 1
    # pB1's alert was raised at +20 s but its transaction committed only now
    ff.record(by=world.users.doctor_b, patient=patients.pB1, risk_level=4)
    Alert.objects.filter(patient=patients.pB1).update(raised_at=start + timedelta(seconds=20))
    assert svc.exchange_high_risk(now=start + timedelta(seconds=120))["built"] == 1
    late = ExchangeRun.objects.filter(partner=partner).order_by("-created_at").first()
    assert [r[2] for r in read_csv(late.get_content())[1:]] == ["乙一"]
    assert svc.exchange_high_risk(now=start + timedelta(seconds=180))["built"] == 0
    # a day later the horizon has moved on, and nothing is sent twice
    assert svc.exchange_high_risk(now=start + timedelta(days=2))["built"] == 0
    assert ExchangeRun.objects.filter(partner=partner, kind="high_risk").count() == 2


# --- packages at rest (SECURITY.md G16; issue 7) ----------------------------------


def _stored_content(run) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT content FROM referrals_exchangerun WHERE id = %s", [run.pk])
        return cur.fetchone()[0]


def _new_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def test_a_stored_package_is_encrypted_at_rest_and_downloads_as_built(
    world, patients, more, police_partner
):
    run = svc.exchange_build(partner=police_partner, kind="scheduled", period=Q3)
    built = run.get_content()
    assert "甲一".encode() in built and patients.pA1.id_number.encode() in built
    stored = _stored_content(run)
    kid, _sep, token = stored.partition("$")
    assert kid == crypto.current_kid()
    sealed = base64.b64decode(token)  # nonce + AES-GCM ciphertext
    for secret in ("甲一", "乙一", patients.pA1.id_number, patients.pB1.id_number):
        raw = secret.encode("utf-8")
        assert raw not in sealed and raw not in stored.encode()
    assert base64.b64encode(built)[:64].decode() not in stored  # not merely base64

    client = Client()
    login(client, grant_export(more.prevention))
    response = export(client, reverse("referrals:run-download", args=[run.pk]))
    assert response.status_code == 200
    downloaded = b"".join(response.streaming_content) if response.streaming else response.content
    assert downloaded == built
    key = ExchangePartner.objects.get(pk=police_partner.pk).signing_key
    assert rules.verify_package(run.manifest, downloaded, key)


def test_key_rotation_re_encrypts_stored_packages(settings, patients, police_partner):
    run = svc.exchange_build(partner=police_partner, kind="scheduled", period=Q3)
    built = run.get_content()
    old = list(settings.FIELD_ENCRYPTION_KEYS)
    settings.FIELD_ENCRYPTION_KEYS = [_new_key("k9"), *old]
    call_command("rotate_field_keys", "--chunk-size", "1", stdout=io.StringIO())
    assert _stored_content(run).startswith("k9$")
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key is gone
    content = ExchangeRun.objects.get(pk=run.pk).get_content()
    assert content == built
    key = ExchangePartner.objects.get(pk=police_partner.pk).signing_key
    assert rules.verify_package(run.manifest, content, key)
