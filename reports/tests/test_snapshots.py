"""Snapshots: one row per region and quarter, final quarters immutable,
incremental refresh of changed counties only; targets as rows."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from core.errors import DomainError
from core.models import TaskRun
from reports import reward, selectors, services, tasks
from reports.models import IndicatorSnapshot, IndicatorTarget
from reports.rules import PATIENT_COUNT_KEYS, Period
from reports.services import ERR_TARGET_NOT_ALLOWED, ERR_TARGET_VALUE
from reports.tests import factories as rf
from reports.tests.conftest import A1, PERIOD, TODAY, expected

pytestmark = pytest.mark.django_db


def _counts(region_code: str, period: Period = PERIOD) -> dict:
    row = IndicatorSnapshot.objects.get(region_id=region_code, period=period.code)
    return {k: row.counts[k] for k in PATIENT_COUNT_KEYS}


def test_snapshot_twice_is_one_row(county):
    county_a = county.world.county_a
    services.snapshot_refresh_county(county=county_a, period=PERIOD, today=TODAY)
    services.snapshot_refresh_county(county=county_a, period=PERIOD, today=TODAY)
    assert IndicatorSnapshot.objects.filter(region=county_a, period="2025Q2").count() == 1
    # the county, its 2 townships and their 4 villages
    assert IndicatorSnapshot.objects.filter(period="2025Q2").count() == 7
    assert _counts("990102") == expected()
    assert _counts("990102001") == expected("A1")
    row = IndicatorSnapshot.objects.get(region=county_a, period="2025Q2")
    assert row.statistics_date == date(2025, 6, 30)
    assert row.counts["population"] == 300000


def test_nightly_fills_the_trend_and_sums_counties_into_the_province(county):
    services.snapshots_nightly(today=TODAY)
    periods = set(
        IndicatorSnapshot.objects.filter(region_id="990102").values_list("period", flat=True)
    )
    assert periods == {p.code for p in Period(2025, 3).last_n(8)}
    province = _counts("990000")
    assert province["registered"] == expected()["registered"] + 1  # + the other county's
    assert province["high_risk"] == 2
    assert IndicatorSnapshot.objects.get(region_id="990102", period="2025Q2").final is True
    assert IndicatorSnapshot.objects.get(region_id="990102", period="2025Q3").final is False


def test_a_final_quarter_is_never_recomputed(county):
    services.snapshots_nightly(today=TODAY)
    before = IndicatorSnapshot.objects.get(region_id="990102", period="2025Q2")
    late = rf.patient(
        by=county.world.users.doctor_a, village=A1, name="补录", registered_on=date(2020, 1, 1)
    )
    rf.followup(late, date(2025, 5, 1))
    services.snapshots_nightly(today=TODAY + timedelta(days=1))
    after = IndicatorSnapshot.objects.get(region_id="990102", period="2025Q2")
    assert after.counts == before.counts
    assert after.computed_at == before.computed_at
    current = IndicatorSnapshot.objects.get(region_id="990102", period="2025Q3")
    assert current.counts["registered"] == before.counts["registered"] + 1


def test_a_quarter_stays_open_for_late_entries_then_becomes_final(county):
    services.snapshots_nightly(today=date(2025, 7, 5))
    row = IndicatorSnapshot.objects.get(region_id="990102", period="2025Q2")
    assert row.final is False and row.statistics_date == date(2025, 6, 30)
    late = rf.patient(
        by=county.world.users.doctor_a, village=A1, name="补录", registered_on=date(2020, 1, 1)
    )
    rf.followup(late, date(2025, 6, 20))
    services.snapshots_nightly(today=date(2025, 7, 10))
    row.refresh_from_db()
    assert row.counts["managed"] == expected()["managed"] + 1
    assert row.final is False
    services.snapshots_nightly(today=date(2025, 7, 16))
    row.refresh_from_db()
    assert row.final is True


def test_incremental_refresh_touches_only_counties_that_changed(county):
    services.snapshots_nightly(today=TODAY)
    other = IndicatorSnapshot.objects.get(region_id="990103", period="2025Q3")
    since = timezone.now()
    rf.followup(county.p["拒绝"], date(2025, 8, 1))
    result = services.snapshots_refresh_changed(since=since, today=TODAY)
    assert result["counties"] == 1
    assert IndicatorSnapshot.objects.get(region_id="990103", period="2025Q3").computed_at == (
        other.computed_at
    )
    assert "欧阳拒绝" in {
        p.name
        for p in selectors.drilldown_patients(
            user=county.world.users.hospital,
            region=county.world.county_a,
            period=Period(2025, 3),
            target=selectors.drill_targets()["managed"],
            today=TODAY,
        )
    }
    current = _counts("990102", Period(2025, 3))
    assert (
        current["managed"]
        == IndicatorSnapshot.objects.get(region_id="990102", period="2025Q3").counts["managed"]
    )
    assert services.snapshots_refresh_changed(since=timezone.now(), today=TODAY)["counties"] == 0


def test_a_transfer_refreshes_both_counties(county):
    services.snapshots_nightly(today=TODAY)
    since = timezone.now()
    moved = county.p["拒绝"]
    moved.region_id = "990103001001"
    moved.save()
    codes = [c.code for c in services.changed_counties(since=since)]
    assert codes == ["990102", "990103"]


@time_machine.travel("2025-08-15 10:00 +0800", tick=False)
def test_tasks_record_their_runs(county):
    tasks.snapshot_incremental()  # the first run ever does the nightly work
    first = TaskRun.objects.get()
    assert first.job == tasks.JOB_NIGHTLY and first.status == TaskRun.Status.SUCCEEDED
    assert first.counts["counties"] == 2
    tasks.snapshot_incremental()
    run = TaskRun.objects.filter(job=tasks.JOB_INCREMENTAL).get()
    assert run.status == TaskRun.Status.SUCCEEDED


def test_reward_coverage_reads_the_subsidies_counts(county, monkeypatch):
    def fake(*, region, date):
        return (
            {"eligible": 4, "active": 3}
            if region.code == "990102"
            else {"eligible": 0, "active": 0}
        )

    # a subsidies app offering only the per-region counts: asked region by region
    monkeypatch.setattr(reward, "county_coverage_function", lambda: None)
    monkeypatch.setattr(reward, "coverage_function", lambda: fake)
    services.snapshot_refresh_county(county=county.world.county_a, period=PERIOD, today=TODAY)
    report = selectors.region_report(region=county.world.county_a, period=PERIOD, today=TODAY)
    value = report.by_key["reward_coverage"]
    assert value.available and value.value == Decimal("75.00")


def test_reward_coverage_per_village_is_rolled_up_the_region_tree(county, monkeypatch):
    asked = []

    def fake(*, county, date):
        asked.append(county.code)
        return {
            "990102001001": {"eligible": 3, "active": 2},
            "990102002001": {"eligible": 1, "active": 1},
        }

    monkeypatch.setattr(reward, "county_coverage_function", lambda: fake)
    monkeypatch.setattr(reward, "coverage_function", lambda: None)
    services.snapshot_refresh_county(county=county.world.county_a, period=PERIOD, today=TODAY)
    assert asked == ["990102"]  # once for the whole county
    rows = {
        s.region_id: (s.counts["reward_eligible"], s.counts["reward_active"])
        for s in IndicatorSnapshot.objects.filter(period=PERIOD.code)
    }
    assert rows["990102"] == (4, 3)
    assert rows["990102001"] == (3, 2) and rows["990102002"] == (1, 1)
    assert rows["990102001002"] == (0, 0)
    report = selectors.region_report(region=county.world.county_a, period=PERIOD, today=TODAY)
    value = report.by_key["reward_coverage"]
    assert value.available and value.value == Decimal("75.00")


def test_reward_coverage_is_not_available_without_the_subsidies_function(county, monkeypatch):
    monkeypatch.setattr(reward, "coverage_function", lambda: None)
    report = selectors.region_report(region=county.world.county_a, period=PERIOD, today=TODAY)
    assert report.by_key["reward_coverage"].available is False
    assert report.by_key["management_rate"].available is True


# --- targets ------------------------------------------------------------------


def test_targets_are_rows_and_the_nearest_region_wins(world):
    province = world.county_a.parent.parent
    services.target_set(
        indicator="management_rate", region=province, year=2025, value=Decimal("80"), by=None
    )
    services.target_set(
        indicator="management_rate",
        region=world.county_a,
        year=2025,
        value=Decimal("90"),
        by=world.users.official,
    )
    services.target_set(
        indicator="management_rate",
        region=world.county_a,
        year=2025,
        value=Decimal("92"),
        by=world.users.official,
    )
    assert IndicatorTarget.objects.filter(region=world.county_a).count() == 1
    targets = selectors.targets_for([world.a1, world.county_c], 2025)
    assert targets["990102001"]["management_rate"] == Decimal("92")
    assert targets["990103"]["management_rate"] == Decimal("80")
    assert selectors.targets_for([world.a1], 2024)["990102001"] == {}


def test_only_officials_and_prevention_staff_set_targets_in_their_scope(world):
    with pytest.raises(DomainError) as exc:
        services.target_set(
            indicator="management_rate",
            region=world.county_a,
            year=2025,
            value=Decimal("90"),
            by=world.users.police_a,
        )
    assert exc.value.message == ERR_TARGET_NOT_ALLOWED
    with pytest.raises(DomainError):
        services.target_set(
            indicator="management_rate",
            region=world.county_c,
            year=2025,
            value=Decimal("90"),
            by=world.users.official,
        )
    with pytest.raises(DomainError) as exc:
        services.target_set(
            indicator="management_rate",
            region=world.county_a,
            year=2025,
            value=Decimal("101"),
            by=world.users.official,
        )
    assert exc.value.message == ERR_TARGET_VALUE


# --- a quarter's first run: every county, and no partial parent rows ----------------


def test_the_first_run_of_a_quarter_refreshes_every_county_before_summing_them(county):
    """Only county A changed on 2 July, but county C has no row for 2025Q3
    yet: both are computed, so the city and province rows are complete."""
    services.snapshots_nightly(today=date(2025, 6, 20))  # 2025Q2 runs
    assert not IndicatorSnapshot.objects.filter(period="2025Q3").exists()
    since = timezone.now()
    rf.followup(county.p["拒绝"], date(2025, 7, 1))
    result = services.snapshots_refresh_changed(since=since, today=date(2025, 7, 2))
    assert result["counties"] == 2
    q3 = Period(2025, 3)
    county_a, county_c = _counts("990102", q3), _counts("990103", q3)
    assert county_c["registered"] == 1
    for parent in ("990100", "990000"):
        row = _counts(parent, q3)
        assert row["registered"] == county_a["registered"] + county_c["registered"]
        assert row["managed"] == county_a["managed"] + county_c["managed"]


def test_a_parent_is_not_summed_while_a_child_has_no_row(county):
    q3, on = Period(2025, 3), date(2025, 7, 2)
    services.snapshot_refresh_county(county=county.world.county_a, period=q3, today=on)
    city = county.world.county_a.parent
    assert services.snapshot_rollup(region=city, period=q3, today=on) == 0
    assert not IndicatorSnapshot.objects.filter(region=city, period="2025Q3").exists()
    services.snapshot_refresh_county(county=county.world.county_c, period=q3, today=on)
    assert services.snapshot_rollup(region=city, period=q3, today=on) == 1


# --- targets: the Django admin goes through the service ------------------------------


def _admin_form(user, data, obj=None):
    from django.contrib import admin
    from django.test import RequestFactory

    from reports.admin import IndicatorTargetAdmin

    request = RequestFactory().post("/admin/reports/indicatortarget/add/")
    request.user = user
    model_admin = IndicatorTargetAdmin(IndicatorTarget, admin.site)
    form_class = model_admin.get_form(request, obj, change=obj is not None)
    return request, model_admin, form_class(data=data, instance=obj)


def test_the_admin_checks_targets_like_the_service_and_audits_them(world):
    from audit.models import AuditEvent

    admin_user = world.users.admin
    data = {"indicator": "management_rate", "region": "990102", "year": 2025, "source": "县方案"}
    _request, _admin, form = _admin_form(admin_user, {**data, "value": "101"})
    assert not form.is_valid()
    assert str(ERR_TARGET_VALUE) in str(form.errors["value"])
    _request, _admin, form = _admin_form(world.users.police_a, {**data, "value": "90"})
    assert not form.is_valid()
    assert str(ERR_TARGET_NOT_ALLOWED) in str(form.errors)
    request, model_admin, form = _admin_form(admin_user, {**data, "value": "90"})
    assert form.is_valid(), form.errors
    obj = form.save(commit=False)
    model_admin.save_model(request, obj, form, change=False)
    target = IndicatorTarget.objects.get()
    assert target.value == Decimal("90") and obj.pk == target.pk
    event = AuditEvent.objects.filter(action="report.target_set").latest("id")
    assert event.actor_id == admin_user.pk and event.detail["value"] == "90"
    assert target.history.latest().history_change_reason == "report.target_set"
    model_admin.delete_model(request, target)
    assert not IndicatorTarget.objects.exists()
    assert AuditEvent.objects.filter(action="report.target_deleted").exists()


@pytest.mark.django_db(transaction=True)
def test_seed_fills_the_quarters_on_two_connections_as_one_would(monkeypatch):
    """seed_demo spreads the trend's quarters over two connections (each
    quarter has its own writer lock): the rows are those of one sequential
    nightly run."""
    import io

    from django.core.management import call_command

    from reports import seed as report_seed

    used = []
    original = services.snapshots_nightly

    def spy(**kwargs):
        used.append(kwargs.get("periods"))
        return original(**kwargs)

    monkeypatch.setattr(services, "snapshots_nightly", spy)
    call_command("seed_demo", "--patients", "300", "--townships", "4", stdout=io.StringIO())
    assert report_seed.SNAPSHOT_CONNECTIONS == 2 and len(used) == 2 and all(used)
    parallel = {(s.region_id, s.period): s.counts for s in IndicatorSnapshot.objects.all()}
    assert parallel
    IndicatorSnapshot.objects.all().delete()
    original()
    sequential = {(s.region_id, s.period): s.counts for s in IndicatorSnapshot.objects.all()}
    assert parallel == sequential
