"""Dashboard pages, drill-down lists and Excel exports, as each role sees them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.models import RegionLevel
from accounts.tests import factories as af
from audit.models import AuditEvent
from patients.tests import factories as pf
from reports import services
from reports.models import IndicatorSnapshot, IndicatorTarget
from reports.rules import ERR_NOT_COMPUTED, ERR_PERIOD_FORMAT, ERR_PERIOD_FUTURE, Period
from reports.tests import factories as rf
from reports.tests.conftest import FULL_NAMES, PERIOD, TODAY, short

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("reports:dashboard")
DRILL = reverse("reports:patients")
EXPORT = reverse("reports:export-indicators")
EXCHANGE = reverse("reports:export-exchange")
NAMES = FULL_NAMES


def _page(client, user, url=DASHBOARD, **params):
    af.login(client, user)
    return client.get(url, params)


@pytest.fixture
def snapshots(county):
    services.snapshots_nightly(today=TODAY)
    return county


def test_official_sees_the_county_townships_and_counts_but_no_patient(client, snapshots):
    response = _page(client, snapshots.world.users.official, period="2025Q2")
    assert response.status_code == 200
    html = response.content.decode()
    assert "县990102" in html and "镇1" in html and "镇2" in html
    assert "66.67%" in html  # management rate 8 / 12
    assert 'id="trend-chart"' in html and 'id="trend-data"' in html
    assert "vendor/chart.umd.min.js" in html
    for name in NAMES:
        assert name not in html
    assert DRILL not in html  # counts only: no way to the patients


def test_default_region_and_period_are_the_users_own(client, snapshots):
    response = _page(client, snapshots.world.users.official)
    assert response.status_code == 200
    assert response.context["region"].code == "990102"
    assert response.context["period"] == Period.containing(timezone.localdate())


def test_health_staff_click_a_number_through_to_the_patients(client, snapshots):
    response = _page(client, snapshots.world.users.doctor_a, period="2025Q2")
    assert response.status_code == 200
    assert response.context["region"].code == "990102001"  # the doctor's township
    html = response.content.decode()
    assert f"{DRILL}?region=990102001&amp;period=2025Q2&amp;indicator=managed" in html
    drill = _page(
        client,
        snapshots.world.users.doctor_a,
        DRILL,
        region="990102001",
        period="2025Q2",
        indicator="standard_management_rate",
    )
    assert drill.status_code == 200
    names = {short(row["patient"].name) for row in drill.context["rows"]}
    assert names == {"规范", "电话"}
    assert drill.context["count"] == 2
    audit = AuditEvent.objects.filter(action="report.drilldown").latest("id")
    assert audit.detail["count"] == 2 and "欧阳" not in str(audit.detail)


def test_the_missing_list_is_the_denominator_minus_the_numerator(client, snapshots):
    drill = _page(
        client,
        snapshots.world.users.hospital,
        DRILL,
        region="990102",
        period="2025Q2",
        indicator="standard_management_rate",
        missing="1",
    )
    names = {short(row["patient"].name) for row in drill.context["rows"]}
    assert names == {"间隔", "失访", "住院", "拒绝", "逾期", "后迁出", "未访到"}


@pytest.mark.parametrize("persona", ["official", "governance", "finance", "police_a", "civil"])
def test_only_health_staff_may_open_the_patients_behind_a_number(client, snapshots, persona):
    user = getattr(snapshots.world.users, persona)
    response = _page(client, user, DRILL, region="990102", period="2025Q2", indicator="managed")
    assert response.status_code == 404


def test_a_doctor_cannot_drill_into_another_township(client, snapshots):
    response = _page(
        client,
        snapshots.world.users.doctor_a,
        DRILL,
        region="990102002",
        period="2025Q2",
        indicator="managed",
    )
    assert response.status_code == 404
    assert AuditEvent.objects.filter(
        action="access.denied", object_type="region", object_id="990102002"
    ).exists()


@pytest.mark.parametrize(
    ("persona", "region"),
    [
        ("official", "990103"),
        ("doctor_a", "990102002"),
        ("doctor_a", "990102"),
        ("finance", "990000"),
    ],
)
def test_a_region_outside_the_scope_is_404_and_audited(client, snapshots, persona, region):
    user = getattr(snapshots.world.users, persona)
    assert _page(client, user, region=region).status_code == 404
    row = AuditEvent.objects.filter(action="access.denied", object_type="region").latest("id")
    assert row.object_id == region and row.actor_id == user.pk


@pytest.mark.parametrize("persona", ["police_a", "admin"])
def test_roles_without_aggregates_have_no_dashboard(client, world, persona):
    assert _page(client, getattr(world.users, persona)).status_code == 404


@pytest.mark.parametrize("persona", ["civil", "dpf"])
def test_civil_affairs_and_the_federation_see_their_countys_counts_only(client, snapshots, persona):
    response = _page(client, getattr(snapshots.world.users, persona), period="2025Q2")
    assert response.status_code == 200
    assert response.context["region"].code == "990102"
    html = response.content.decode()
    assert "66.67%" in html and "残疾证持证率" in html and "社区康复参与率" in html
    assert DRILL not in html
    for name in NAMES:
        assert name not in html


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2025Q5", ERR_PERIOD_FORMAT),
        ("abc", ERR_PERIOD_FORMAT),
        ("2099Q1", ERR_PERIOD_FUTURE),
        ("2019Q1", "2019年第2季度"),  # before the first registration (1 June 2019)
    ],
)
def test_an_invalid_future_or_too_old_period_is_refused_with_a_reason(
    client, county, period, message
):
    response = _page(client, county.world.users.official, period=period)
    assert response.status_code == 400
    assert str(message) in response.content.decode()
    assert response.context["period_choices"]


def test_the_first_quarter_with_data_is_computed_live(client, county):
    response = _page(client, county.world.users.official, period="2019Q2")
    assert response.status_code == 200
    assert response.context["report"].counts["registered"] == 12


def test_a_province_without_a_snapshot_is_not_computed_live(client, county):
    from accounts.models import OrganisationKind
    from accounts.roles import Role

    province = county.world.county_a.parent.parent
    org = af.organisation("省卫健委", OrganisationKind.HEALTH_BUREAU, province)
    official = af.staff("official_p", Role.OFFICIAL, org)
    response = _page(client, official, period="2025Q2")
    assert response.status_code == 200
    assert response.context["region"].code == "990000"
    assert str(ERR_NOT_COMPUTED) in response.content.decode()
    assert "report" not in response.context
    services.snapshots_nightly(today=TODAY)
    response = _page(client, official, period="2025Q2")
    assert response.context["report"].counts["registered"] == 13
    assert response.context["report"].live is False


def _card(response, key: str) -> dict:
    return next(c for s in response.context["sections"] for c in s["cards"] if c["key"] == key)


@time_machine.travel("2025-08-15 10:00 +0800", tick=False)
def test_a_townships_running_quarter_agrees_with_its_drilldown_despite_a_stale_snapshot(
    client, county
):
    """The snapshot of 2025Q3 was taken before three home visits in township
    A2; its page counts them at once, as the list behind the number does."""
    services.snapshots_nightly(today=date(2025, 8, 15))
    stale = IndicatorSnapshot.objects.get(region_id="990102002", period="2025Q3").counts
    for name in ("失访", "住院", "未访到"):
        rf.followup(county.p[name], date(2025, 8, 14))
    doctor = county.world.users.doctor_b  # township A2
    response = _page(client, doctor)
    report = response.context["report"]
    assert report.region.code == "990102002" and report.period == Period(2025, 3)
    assert report.live is True
    assert report.counts["face_to_face"] == stale["face_to_face"] + 3
    card = _card(response, "face_to_face_rate")
    assert "snapshot=" not in card["drill_url"]
    drill = client.get(card["drill_url"].replace("&amp;", "&"))
    assert drill.context["count"] == card["numerator"] == report.counts["face_to_face"]
    assert drill.context["snapshot"] is None
    api = client.get("/api/v1/reports/indicators/", {"region": "990102002"}).json()
    assert api["source"] == "live"
    assert api["indicators"]["face_to_face_rate"]["numerator"] == card["numerator"]


@time_machine.travel("2025-08-15 10:00 +0800", tick=False)
def test_a_county_page_reads_its_snapshot_and_the_drilldown_states_it(client, county):
    """A county computed live would cost more than the page's budget: its
    running quarter comes from the snapshot, and the list behind a number
    says which snapshot (time and count) the number was read from."""
    services.snapshots_nightly(today=date(2025, 8, 15))
    row = IndicatorSnapshot.objects.get(region_id="990102", period="2025Q3")
    for name in ("失访", "住院", "未访到"):
        rf.followup(county.p[name], date(2025, 8, 14))
    hospital = county.world.users.hospital  # health staff over the county
    response = _page(client, hospital, region="990102")
    assert response.context["report"].live is False
    card = _card(response, "face_to_face_rate")
    assert card["numerator"] == row.counts["face_to_face"]
    assert "snapshot=1" in card["drill_url"]
    drill = client.get(card["drill_url"].replace("&amp;", "&"))
    assert drill.context["count"] == row.counts["face_to_face"] + 3
    assert drill.context["snapshot"]["count"] == row.counts["face_to_face"]
    html = drill.content.decode()
    assert timezone.localtime(row.computed_at).strftime("%Y-%m-%d %H:%M") in html


def _add_townships(world, n: int) -> None:
    for t in range(3, 3 + n):
        town = af.region(f"990102{t:03d}", f"新镇{t}", RegionLevel.TOWNSHIP, world.county_a, 1000)
        village = af.region(f"{town.code}001", f"新村{t}", RegionLevel.VILLAGE, town, 1000)
        pf.patient(by=world.users.hospital, village=village, name=f"新{t}")


def test_dashboard_queries_do_not_grow_with_townships(client, world, django_assert_max_num_queries):
    """A past quarter, read from the snapshots."""
    af.login(client, world.users.official)
    last = Period.containing(timezone.localdate()).previous().code
    services.snapshots_nightly()
    with django_assert_max_num_queries(16):
        assert client.get(DASHBOARD, {"period": last}).status_code == 200
    _add_townships(world, 10)
    services.snapshots_nightly()
    with django_assert_max_num_queries(16):
        response = client.get(DASHBOARD, {"period": last})
    assert len(response.context["rows"]) == 12
    assert response.context["report"].live is False


def test_live_dashboard_queries_do_not_grow_with_townships(
    client, world, django_assert_max_num_queries
):
    af.login(client, world.users.hospital)
    with django_assert_max_num_queries(22):
        assert client.get(DASHBOARD).status_code == 200
    _add_townships(world, 10)
    with django_assert_max_num_queries(22):
        response = client.get(DASHBOARD)
    assert response.context["report"].live and len(response.context["rows"]) == 12


@pytest.mark.parametrize("extra", [0, 29])
def test_drilldown_queries_do_not_grow_with_rows(
    client, world, extra, django_assert_max_num_queries
):
    for i in range(1 + extra):
        pf.patient(by=world.users.doctor_a, village="990102001001", name=f"名单{i}")
    af.login(client, world.users.doctor_a)
    with django_assert_max_num_queries(24):
        response = client.get(DRILL, {"region": "990102001", "indicator": "registered"})
    assert response.status_code == 200
    assert len(response.context["rows"]) == 1 + extra


def _export(client, user, url, **params):
    """An export: the official holds the export permission and gives a reason."""
    af.grant_export(user)
    af.login(client, user)
    return af.export(client, url, params)


def _workbook(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return load_workbook(BytesIO(response.content))


def _all_text(wb) -> str:
    return " ".join(
        str(cell.value) for ws in wb.worksheets for row in ws.iter_rows() for cell in row
    )


def test_indicator_export_has_the_table_and_each_townships_breakdown(client, snapshots):
    wb = _workbook(_export(client, snapshots.world.users.official, EXPORT, period="2025Q2"))
    assert wb.sheetnames == ["指标汇总", "按下级地区", "镇1", "镇2"]
    summary = {row[1]: row for row in wb["指标汇总"].iter_rows(min_row=5, values_only=True)}
    assert summary["management_rate"][2:5] == (8, 12, 66.67)
    assert summary["registered"][4] == 12
    towns = list(wb["按下级地区"].iter_rows(min_row=5, values_only=True))
    assert [r[0] for r in towns] == ["990102001", "990102002", "990102"]
    assert [r[2] for r in towns] == [6, 6, 12]  # registered
    villages = [r[0] for r in wb["镇1"].iter_rows(min_row=5, values_only=True)]
    assert villages == ["990102001001", "990102001002", "990102001"]
    text = _all_text(wb)
    assert not any(name in text for name in NAMES)
    event = AuditEvent.objects.get(action="data.export", object_id="990102")
    assert event.object_type == "report_indicators" and event.detail["reason"] == af.EXPORT_REASON


def test_exchange_form_counts_by_township_and_institution_type(client, snapshots):
    wb = _workbook(_export(client, snapshots.world.users.official, EXCHANGE, period="2025Q2"))
    ws = wb["信息交换表"]
    assert ws.cell(row=1, column=1).value == "严重精神障碍患者管理信息交换表"
    groups = [ws.cell(row=3, column=c).value for c in range(1, ws.max_column + 1)]
    assert "乡镇卫生院/社区卫生服务中心" in groups and "派出所" in groups
    headers = [ws.cell(row=4, column=c).value for c in range(1, ws.max_column + 1)]
    rows = {r[0]: r for r in ws.iter_rows(min_row=5, max_row=7, values_only=True)}
    registered = headers.index("在册患者数")
    assert (rows["镇1"][registered], rows["镇2"][registered], rows["合计"][registered]) == (
        6,
        6,
        12,
    )
    assert rows["合计"][headers.index("本季度肇事肇祸患者数")] == 1
    assert rows["合计"][headers.index("持残疾人证患者数")] == 1
    assert "劳动保障所" in groups
    assert rows["合计"][headers.index("参加基本医疗保险患者数")] == 11
    assert (
        rows["镇1"][headers.index("未参保患者数")],
        rows["合计"][headers.index("未参保患者数")],
    ) == (
        1,
        1,
    )
    assert not any(name in _all_text(wb) for name in NAMES)


def test_page_api_and_export_agree(client, snapshots):
    official = snapshots.world.users.official
    html = _page(client, official, period="2025Q2").content.decode()
    api = client.get("/api/v1/reports/indicators/", {"region": "990102", "period": "2025Q2"})
    wb = _workbook(_export(client, official, EXPORT, period="2025Q2"))
    summary = {row[1]: row[4] for row in wb["指标汇总"].iter_rows(min_row=5, values_only=True)}
    for key, value in api.json()["indicators"].items():
        if value["value"] is None:
            continue
        assert summary[key] == value["value"], key
        shown = f"{value['value']:.2f}" if value["unit"] != "count" else str(value["value"])
        assert shown in html, key
    assert IndicatorSnapshot.objects.filter(region_id="990102", period=PERIOD.code).exists()


# --- targets page ------------------------------------------------------------------

TARGETS = reverse("reports:targets")


def test_an_official_sets_a_target_on_the_targets_page(client, world):
    official = world.users.official
    response = _page(client, official, TARGETS)
    assert response.status_code == 200
    regions = {r.code for r in response.context["form"].fields["region"].queryset}
    assert regions == {"990102", "990102001", "990102002"}
    data = {"indicator": "management_rate", "region": "990102", "year": 2025, "value": "90"}
    response = client.post(TARGETS, {**data, "source": "县方案"})
    assert response.status_code == 302
    target = IndicatorTarget.objects.get()
    assert (target.value, target.source) == (Decimal("90"), "县方案")
    assert AuditEvent.objects.filter(action="report.target_set", actor=official).exists()
    listed = _page(client, official, TARGETS, year=2025)
    assert "县990102" in listed.content.decode() and "90.00%" in listed.content.decode()


def test_the_targets_page_refuses_what_the_service_refuses(client, world):
    af.login(client, world.users.official)
    data = {"indicator": "management_rate", "region": "990102", "year": 2025}
    too_high = client.post(TARGETS, {**data, "value": "101"})
    assert too_high.status_code == 200
    assert "目标值应在0到100之间" in too_high.content.decode()
    other_county = client.post(TARGETS, {**data, "region": "990103", "value": "90"})
    assert other_county.context["form"].errors["region"]  # outside the official's area
    assert not IndicatorTarget.objects.exists()


@pytest.mark.parametrize("persona", ["police_a", "doctor_a", "finance", "civil"])
def test_other_roles_may_not_set_targets(client, world, persona):
    assert _page(client, getattr(world.users, persona), TARGETS).status_code == 403
