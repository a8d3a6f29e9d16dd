"""official1 opens the indicator dashboard in the browser: the four townships
of the demo county and the charts (drawn by the app's own Chart.js under the
CSP), downloads the Excel file (giving the export's reason), and sees no patient identity anywhere."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone
from openpyxl import load_workbook
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from core.seeding import SeedContext

SURNAME = "欧阳"
TOWNSHIPS = ["城关镇", "东山乡", "西河乡", "南岭镇"]


def _demo_county() -> list[tuple[str, str, str]]:
    """The demo county's regions, accounts and a few patients with follow-ups
    (the seed stages of accounts, patients and reports)."""
    from accounts import seed as accounts_seed
    from followups.models import FollowUp
    from patients import seed as patients_seed
    from patients.models import REGISTERED_STATUSES, Patient
    from reports import seed as reports_seed

    ctx = SeedContext(patients=80, townships=4, password=PASSWORD)
    accounts_seed.seed(ctx)
    patients_seed.seed(ctx)
    rng = random.Random(5)
    today = timezone.localdate()
    patients = list(Patient.objects.order_by("pk"))
    for i, p in enumerate(patients):
        p.name = f"{SURNAME}{i}号"  # a surname no page label contains
    Patient.objects.bulk_update(patients, ["name"])
    FollowUp.objects.bulk_create(
        FollowUp(
            patient=p,
            visit_date=today - timedelta(days=rng.randint(0, 60)),
            mode=rng.choice(["clinic", "home", "phone"]),
            medication_compliance=rng.choice(["regular", "intermittent", "none"]),
            classification=rng.choice(["stable", "basically_stable"]),
            risk_level=rng.randint(0, 4),
        )
        for p in patients
        if p.status in REGISTERED_STATUSES
    )
    reports_seed.seed(ctx)
    return [(p.name, p.id_number, p.phone) for p in Patient.objects.all()]


def _assert_no_identity(text: str, identities) -> None:
    assert SURNAME not in text
    for _name, number, phone in identities:
        assert number not in text
        if phone:
            assert phone not in text


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_official_sees_townships_and_a_chart_and_downloads_excel(page, live_server, tmp_path):
    identities = _demo_county()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    remote: list[str] = []
    page.on(
        "request",
        lambda req: remote.append(req.url) if not req.url.startswith(live_server.url) else None,
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "official1")
    page.fill("#id_password", PASSWORD)
    page.click("#submit")
    page.wait_for_url("**/reports/")

    expect(page.locator("#dashboard-title")).to_contain_text("示范县")
    rows = page.locator("#children-table tbody tr")
    expect(rows).to_have_count(4)
    for name in TOWNSHIPS:
        expect(page.locator("#children-table")).to_contain_text(name)
    # the charts are drawn by the vendored Chart.js from the page's JSON
    expect(page.locator("#trend-chart[data-rendered='1']")).to_be_visible()
    expect(page.locator("#risk-chart[data-rendered='1']")).to_be_visible()
    registered = page.locator("#card-registered .value").inner_text().strip()
    assert int(registered) > 0
    _assert_no_identity(page.content(), identities)

    # the export asks for the reason (the demo's official1 holds the export permission)
    page.click("#export-xlsx")
    page.fill("#id_reason", "季度报表上报")
    with page.expect_download() as info:
        page.click("#submit")
    path = tmp_path / "indicators.xlsx"
    info.value.save_as(path)
    wb = load_workbook(path)
    assert wb.sheetnames[:2] == ["指标汇总", "按下级地区"]
    assert all(name in wb.sheetnames for name in TOWNSHIPS)
    summary = {row[1]: row for row in wb["指标汇总"].iter_rows(min_row=5, values_only=True)}
    assert summary["registered"][4] == int(registered)
    cells = " ".join(
        str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value
    )
    _assert_no_identity(cells, identities)

    # back from the export's reason page to the dashboard
    page.go_back()
    expect(page.locator("#dashboard-title")).to_contain_text("示范县")

    # down to the villages of one township: still counts only
    page.locator("#children-table a.child-link", has_text="城关镇").click()
    page.wait_for_url("**/reports/?region=990102001*")
    expect(page.locator("#dashboard-title")).to_contain_text("城关镇")
    expect(page.locator("#children-table tbody tr").first).to_be_visible()
    assert page.locator("a.drill").count() == 0
    _assert_no_identity(page.content(), identities)

    assert [m for m in console if "Content Security Policy" in m] == []
    assert [url for url in remote if not url.startswith("data:")] == []
