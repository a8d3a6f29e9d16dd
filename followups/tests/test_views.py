"""The follow-up, overdue, alert and incident pages as their users see them."""

from __future__ import annotations

import re
from datetime import timedelta
from io import BytesIO

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from accounts.tests import factories as af
from audit.models import AuditEvent
from followups.models import Alert, FollowUp, NotificationDelivery
from followups.selectors import overdue_count_for
from followups.tests.factories import incident, record
from patients.models import Patient
from patients.tests import factories as pf

pytestmark = pytest.mark.django_db

# session, user, profile, role, scope, care-team probe, villages, count, page,
# overdue total; the same for 1 and 30 rows
OVERDUE_PAGE_BUDGET = 22
ALERT_PAGE_BUDGET = 22


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def form_post(**changes) -> dict:
    data = {
        "visit_date": timezone.localdate().isoformat(),
        "mode": "home",
        "outcome": "completed",
        "contacts": ["patient"],
        "risk_level": "0",
        "insight": "complete",
        "sleep": "good",
        "diet": "good",
        "self_care": "good",
        "housework": "good",
        "work": "not_applicable",
        "learning": "good",
        "social": "good",
        "lock_status": "none",
        "hospitalization": "none",
        "medication_compliance": "regular",
        "treatment_effect": "improved",
        "med_0_drug": "奥氮平",
        "med_0_evening_mg": "10",
        "classification": "",
    }
    data.update(changes)
    return data


# --------------------------------------------------------------- record a visit


def test_new_visit_page_prefills_last_medication(world, patients):
    record(by=world.users.doctor_a, patient=patients.pA1, days_ago=30)
    r = client_for(world.users.doctor_a).get(f"/followups/new/{patients.pA1.pk}/")
    assert r.status_code == 200
    body = r.content.decode()
    assert "甲一" in body and 'value="利培酮"' in body
    assert 'hx-post="/followups/new/' in body


def test_doctor_records_a_routine_visit_on_one_page(world, patients):
    c = client_for(world.users.doctor_a)
    r = c.post(f"/followups/new/{patients.pA1.pk}/", form_post())
    assert r.status_code == 302 and r["Location"] == f"/followups/patient/{patients.pA1.pk}/"
    fu = FollowUp.objects.get()
    assert fu.classification == "stable"
    assert fu.medications == [{"drug": "奥氮平", "evening_mg": "10"}]
    page = c.get(r["Location"]).content.decode()
    assert "已保存随访记录" in page and "稳定" in page


def test_risk_three_visit_says_who_was_told(world, patients):
    c = client_for(world.users.doctor_a)
    r = c.post(f"/followups/new/{patients.pA1.pk}/", form_post(risk_level="3"), follow=True)
    page = r.content.decode()
    assert "A1派出所" in page and "A1综治办" in page


def test_double_submit_saves_one_visit(world, patients):
    c = client_for(world.users.doctor_a)
    data = form_post(idempotency_key="6f1c9c5e-9a55-4f5e-8a43-0b8a3a3f0d11")
    c.post(f"/followups/new/{patients.pA1.pk}/", data)
    c.post(f"/followups/new/{patients.pA1.pk}/", data)
    assert FollowUp.objects.count() == 1


def test_missing_clinical_items_are_shown_on_the_form(world, patients):
    r = client_for(world.users.doctor_a).post(
        f"/followups/new/{patients.pA1.pk}/", form_post(insight="", sleep="")
    )
    assert r.status_code == 200
    assert r.context["form"].errors["insight"] == ["已随访时须填写此项。"]
    assert not FollowUp.objects.exists()


def test_a_visit_date_before_the_patients_birth_is_refused_on_the_page(world, patients):
    p = patients.pA1
    born = p.birth_date.isoformat()
    c = client_for(world.users.doctor_a)
    page = c.get(f"/followups/new/{p.pk}/")
    assert f'min="{born}"' in page.content.decode()
    day_before = (p.birth_date - timedelta(days=1)).isoformat()
    r = c.post(f"/followups/new/{p.pk}/", form_post(visit_date=day_before))
    assert r.status_code == 200
    assert r.context["form"].errors["visit_date"] == [f"随访日期不能早于患者的出生日期（{born}）。"]
    assert not FollowUp.objects.exists()


def test_override_without_a_reason_is_refused(world, patients):
    r = client_for(world.users.doctor_a).post(
        f"/followups/new/{patients.pA1.pk}/", form_post(classification="unstable")
    )
    assert "classification_override_reason" in r.context["form"].errors


def test_live_suggestion_follows_the_fields(world, patients):
    c = client_for(world.users.doctor_a)
    url = f"/followups/new/{patients.pA1.pk}/suggest/"
    headers = {"HTTP_HX_REQUEST": "true"}
    r = c.post(url, form_post(risk_level="3"), **headers)
    assert r.status_code == 200
    body = r.content.decode()
    assert "不稳定" in body
    assert (timezone.localdate() + timedelta(days=14)).isoformat() in body
    assert "<html" not in body  # a partial
    calm = c.post(url, form_post(), **headers).content.decode()
    assert 'data-code="stable"' in calm
    missing = c.post(url, form_post(risk_level=""), **headers).content.decode()
    assert "系统建议分类还需填写：危险性评估" in missing
    missed = c.post(url, form_post(outcome="not_reached"), **headers).content.decode()
    assert "下次随访日期不变" in missed


def test_live_suggestion_waits_for_the_items_and_refuses_a_future_date(world, patients):
    c = client_for(world.users.doctor_a)
    url = f"/followups/new/{patients.pA1.pk}/suggest/"
    headers = {"HTTP_HX_REQUEST": "true"}
    only_risk = {
        "visit_date": timezone.localdate().isoformat(),
        "mode": "home",
        "outcome": "completed",
        "risk_level": "0",
    }
    body = c.post(url, only_risk, **headers).content.decode()
    assert 'id="suggested-classification"' not in body and "稳定" not in body
    assert "系统建议分类还需填写：自知力、个人生活料理、家务劳动" in body
    tomorrow = timezone.localdate() + timedelta(days=1)
    body = c.post(url, form_post(visit_date=tomorrow.isoformat()), **headers).content.decode()
    assert "随访日期不能晚于今天。" in body
    assert 'id="suggested-due"' not in body
    assert (tomorrow + timedelta(days=14)).isoformat() not in body


def test_the_page_refuses_an_injection_interval_the_api_refuses(world, patients):
    from followups import rules

    c = client_for(world.users.doctor_a)
    for weeks in ("0", "1.5", "53"):
        data = form_post(
            med_0_drug="棕榈酸帕利哌酮",
            med_0_evening_mg="",
            med_0_injection_interval_weeks=weeks,
            med_0_injection_mg="150",
        )
        r = c.post(f"/followups/new/{patients.pA1.pk}/", data)
        assert r.status_code == 200, weeks
        assert r.context["form"].errors["med_0_drug"] == [rules.ERR_INJECTION_INTERVAL]
    assert not FollowUp.objects.exists()


@pytest.mark.parametrize("persona, status", [("police_a", 403), ("civil", 403), ("doctor_b", 404)])
def test_who_may_not_open_the_visit_form(world, patients, persona, status):
    r = client_for(getattr(world.users, persona)).get(f"/followups/new/{patients.pA1.pk}/")
    assert r.status_code == status


def test_print_view_has_the_national_items_and_codes(world, patients):
    fu = record(
        by=world.users.doctor_a,
        patient=patients.pA1,
        risk_level=1,
        work="not_applicable",
        hospitalization="none",
        treatment_effect="not_applicable",
    )
    r = client_for(world.users.doctor_a).get(f"/followups/{fu.pk}/print/")
    items = {item["no"]: item for item in r.context["items"]}
    assert sorted(items) == list(range(1, 31))  # the national form's 30 items
    labels = {no: str(item["label"]) for no, item in items.items()}
    assert (labels[5], labels[6], labels[7], labels[30]) == (
        "死亡日期",
        "死亡原因",
        "危险性评估",
        "随访医生签名",
    )

    def codes(no):
        return {o["n"]: o["on"] for o in items[no]["options"] if "n" in o}

    assert codes(14) == {1: False, 2: False, 3: False, 9: True}  # work: 9 not applicable
    assert codes(19) == {0: True, 1: False, 2: False}  # hospitalisation 0/1/2
    assert codes(23) == {1: False, 2: False, 3: False, 4: False, 9: True}
    assert codes(17) == {1: False, 2: False, 3: False, 4: False, 5: False, 6: False, 7: True}
    assert codes(22) == {1: True, 2: False, 9: False}  # adverse reaction: none
    assert codes(28) == {1: False, 2: True, 3: False}  # basically stable
    html = r.content.decode()
    assert "☑9 此项不适用" in html and "☑0 未住院" in html and "☑7 无" in html


def test_detail_print_and_edit(world, patients):
    fu = record(by=world.users.doctor_a, patient=patients.pA1, risk_level=2)
    c = client_for(world.users.doctor_a)
    detail = c.get(f"/followups/{fu.pk}/").content.decode()
    assert "基本稳定" in detail and "利培酮 早1mg 晚2mg" in detail
    printed = c.get(f"/followups/{fu.pk}/print/").content.decode()
    assert "严重精神障碍患者随访服务记录表" in printed
    assert "☑2 家庭访视" in printed and "☑2 2级" in printed and "☐3 3级" in printed
    stale = c.post(
        f"/followups/{fu.pk}/edit/",
        form_post(risk_level="1", version=str(fu.version + 5), outcome="completed"),
    )
    assert stale.status_code == 200 and "已被他人修改" in stale.content.decode()
    ok = c.post(
        f"/followups/{fu.pk}/edit/",
        form_post(risk_level="4", version=str(fu.version), visit_date=fu.visit_date.isoformat()),
    )
    assert ok.status_code == 302
    fu.refresh_from_db()
    assert fu.risk_level == 4 and fu.classification == "unstable"
    assert client_for(world.users.doctor_b).get(f"/followups/{fu.pk}/").status_code == 404


# --------------------------------------------------------------- overdue list


def _overdue(world, n, *, village="990102001002"):
    today = timezone.localdate()
    made = []
    for i in range(n):
        p = pf.patient(by=world.users.doctor_a, village=village, name=f"逾期{i:02d}")
        Patient.objects.filter(pk=p.pk).update(
            next_followup_due=today - timedelta(days=i + 1), risk_level=i % 4
        )
        made.append(p)
    return made


@pytest.mark.parametrize("rows", [1, 30])
def test_overdue_page_query_count_is_constant(world, patients, django_assert_max_num_queries, rows):
    _overdue(world, rows)
    c = client_for(world.users.doctor_a)
    with django_assert_max_num_queries(OVERDUE_PAGE_BUDGET):
        r = c.get("/followups/overdue/")
    assert r.status_code == 200
    assert len(r.context["rows"]) == rows


def test_overdue_list_is_sorted_by_risk_then_days_and_counts_match(world, patients):
    _overdue(world, 8)
    r = client_for(world.users.doctor_a).get("/followups/overdue/")
    rows = r.context["rows"]
    keys = [(-(row["patient"].risk_level or 0), -row["days"]) for row in rows]
    assert keys == sorted(keys)
    assert r.context["total_overdue"] == overdue_count_for(world.users.doctor_a) == 8


def test_overdue_filters(world, patients):
    _overdue(world, 8)
    _overdue(world, 2, village="990102001001")
    c = client_for(world.users.doctor_a)
    assert len(c.get("/followups/overdue/", {"village": "990102001001"}).context["rows"]) == 2
    high = c.get("/followups/overdue/", {"risk": "3"}).context["rows"]
    assert high and all(row["patient"].risk_level >= 3 for row in high)
    old = c.get("/followups/overdue/", {"days": "7"}).context["rows"]
    assert old and all(row["days"] >= 7 for row in old)
    # the header still counts everyone overdue, like the dashboard
    assert c.get("/followups/overdue/", {"days": "7"}).context["total_overdue"] == 10


def test_excel_export_works_also_when_empty(world, patients):
    af.grant_export(world.users.doctor_a)
    c = client_for(world.users.doctor_a)
    empty = af.export(c, "/followups/overdue/export/")
    assert empty.status_code == 200
    ws = load_workbook(BytesIO(empty.content)).active
    assert [c.value for c in next(ws.iter_rows(max_row=1))][:3] == ["姓名", "性别", "年龄"]
    assert ws.max_row == 1
    _overdue(world, 3)
    full = load_workbook(BytesIO(af.export(c, "/followups/overdue/export/").content)).active
    rows = list(full.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 3 and "*" in rows[0][3]  # ID masked
    assert "attachment" in empty["Content-Disposition"]


def test_one_click_not_reached_then_lost_on_the_third_day(world, patients):
    (p,) = _overdue(world, 1)
    c = client_for(world.users.doctor_a)
    url = f"/followups/overdue/{p.pk}/not-reached/"
    r = c.post(url, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "连续第1次" in r.content.decode()
    assert FollowUp.objects.get().outcome == "not_reached"
    # two more clicks the same day: one missed day, not three
    c.post(url, HTTP_HX_REQUEST="true")
    c.post(url, HTTP_HX_REQUEST="true")
    assert Patient.objects.get(pk=p.pk).status == "active"
    assert not Alert.objects.filter(kind="lost").exists()
    FollowUp.objects.filter(patient=p).update(visit_date=timezone.localdate() - timedelta(days=2))
    record(by=world.users.doctor_a, patient=p, days_ago=1, outcome="not_reached")
    row = client_for(world.users.doctor_a).get("/followups/overdue/").context["rows"][0]
    assert row["misses"] == 2 and row["loses_next"]
    third = c.post(url, {"next": "/followups/overdue/?risk=1"})
    assert third.status_code == 302 and third["Location"] == "/followups/overdue/?risk=1"
    assert Patient.objects.get(pk=p.pk).status == "lost"
    assert Alert.objects.filter(kind="lost", patient=p).count() == 1


def test_a_replayed_not_reached_click_records_once(world, patients):
    (p,) = _overdue(world, 1)
    c = client_for(world.users.doctor_a)
    page = c.get("/followups/overdue/")
    html = page.content.decode()
    row = page.context["rows"][0]
    key = str(row["idempotency_key"])
    assert 'hx-disabled-elt="find button"' in html  # no second click while it runs
    assert f'name="idempotency_key" value="{key}"' in html
    url = f"/followups/overdue/{p.pk}/not-reached/"
    for _ in range(3):
        r = c.post(url, {"idempotency_key": key}, HTTP_HX_REQUEST="true")
        assert r.status_code == 200
    assert FollowUp.objects.filter(patient=p).count() == 1
    assert FollowUp.objects.get(patient=p).idempotency_key == row["idempotency_key"]
    # the row that comes back carries a fresh key for the next attempt
    assert key not in r.content.decode() and 'name="idempotency_key"' in r.content.decode()


def test_police_cannot_open_the_overdue_list(world, patients):
    assert client_for(world.users.police_a).get("/followups/overdue/").status_code == 403


# --------------------------------------------------------------- alerts


@pytest.mark.parametrize("rows", [1, 30])
def test_alert_page_query_count_is_constant(world, patients, django_assert_max_num_queries, rows):
    for i in range(rows):
        p = pf.patient(by=world.users.doctor_a, village="990102001002", name=f"高风险{i}")
        record(by=world.users.doctor_a, patient=p, risk_level=3)
    c = client_for(world.users.police_a)
    with django_assert_max_num_queries(ALERT_PAGE_BUDGET):
        r = c.get("/alerts/")
    assert len(r.context["rows"]) == rows


def test_police_inbox_acknowledge_and_resolve(world, patients):
    record(by=world.users.doctor_a, patient=patients.pA1, risk_level=4)
    alert = Alert.objects.get()
    c = client_for(world.users.police_a)
    page = c.get("/alerts/").content.decode()
    assert "甲一" in page and "精神分裂症" not in page and "138****0000" in page
    r = c.post(f"/alerts/{alert.pk}/acknowledge/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "已签收" in r.content.decode()
    assert "<html" not in r.content.decode()
    detail = c.get(f"/alerts/{alert.pk}/").content.decode()
    assert "13800000000" in detail and "A1综治办" in detail
    seen = AuditEvent.objects.filter(object_type="patient", object_id=str(patients.pA1.pk))
    before = seen.count()
    refused = c.post(f"/alerts/{alert.pk}/resolve/", {"note": ""})
    assert refused.status_code == 200 and refused.context["form"].errors
    # the form shown again shows the patient again: that read is audited too
    assert "甲一" in refused.content.decode() and seen.count() == before + 1
    done = c.post(
        f"/alerts/{alert.pk}/resolve/", {"note": "已上门，家属看护中", "next": "/alerts/"}
    )
    assert done.status_code == 302
    assert c.get("/alerts/").context["rows"] == []
    resolved = c.get("/alerts/", {"status": "resolved"}).context["rows"]
    assert resolved[0]["row"].note == "已上门，家属看护中"
    assert client_for(world.users.police_b).get(f"/alerts/{alert.pk}/").status_code == 404


def test_county_governance_oversees_every_alert_in_the_area(world, patients):
    record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    c = client_for(world.users.governance)
    assert c.get("/alerts/").context["rows"] == []  # its own inbox: escalations only
    area = c.get("/alerts/", {"scope": "area", "status": "all"})
    assert len(area.context["rows"]) == 1
    assert "A1派出所" in area.content.decode()
    assert (
        client_for(world.users.police_a).get("/alerts/", {"scope": "area"}).context["area"] is False
    )


# --------------------------------------------------------------- incidents


def test_police_find_the_patient_and_record_an_incident(world, patients):
    c = client_for(world.users.police_a)
    found = c.post("/followups/incidents/new/", {"q": "甲一"})
    assert [r["patient"].pk for r in found.context["results"]] == [patients.pA1.pk]
    assert c.post("/followups/incidents/new/", {"q": "乙一"}).context["results"] == []
    r = c.post(
        f"/followups/incidents/new/?patient={patients.pA1.pk}",
        {
            "patient": str(patients.pA1.pk),
            "kind": "minor_trouble",
            "occurred_on": timezone.localdate().isoformat(),
            "place": "集市",
            "description": "在集市上与人争吵",
            "handling": "劝离",
        },
    )
    assert r.status_code == 302
    alert = Alert.objects.get(kind="incident")
    assert alert.incident.place == "集市"
    listed = c.get("/followups/incidents/").content.decode()
    assert "集市" in listed and "轻度滋事" in listed
    doctor = client_for(world.users.doctor_a)
    assert doctor.get("/followups/incidents/new/").status_code == 403
    assert "集市" in doctor.get("/followups/incidents/").content.decode()


def test_incident_patient_search_keeps_the_term_out_of_urls(world, patients):
    """No personal data in URLs (SECURITY.md): the search POSTs its term, no
    link of the answer carries it, and a term in a URL is not searched."""
    c = client_for(world.users.police_a)
    page = c.get("/followups/incidents/new/").content.decode()
    form = re.search(r'<form[^>]*role="search"[^>]*>', page, re.S).group(0)
    assert 'method="post"' in form and "hx-get=" not in form and "hx-push-url" not in form
    number = patients.pA1.id_number
    for term in (patients.pA1.name, number):
        found = c.post("/followups/incidents/new/", {"q": term})
        assert found.status_code == 200
        assert [r["patient"].pk for r in found.context["results"]] == [patients.pA1.pk]
        body = found.content.decode()
        assert f'href="?patient={patients.pA1.pk}"' in body and f'value="{term}"' in body
        urls = " ".join(re.findall(r'(?:href|hx-get|hx-post|action)="([^"]*)"', body))
        assert term not in urls and "q=" not in urls
    assert AuditEvent.objects.filter(
        action="patient.list", actor=world.users.police_a, object_id=str(patients.pA1.pk)
    ).exists()
    assert c.get("/followups/incidents/new/", {"q": number}).context["results"] == []


def test_incident_for_a_patient_of_another_township_is_404(world, patients):
    c = client_for(world.users.police_a)
    assert c.get(f"/followups/incidents/new/?patient={patients.pB1.pk}").status_code == 404


def test_no_notification_twice_for_the_same_alert(
    world, patients, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident(by=world.users.police_a, patient=patients.pA1)
    assert NotificationDelivery.objects.count() == 2


def test_panels_for_the_patient_page(world, patients):
    from django.template.loader import render_to_string

    from followups.views import alert_panel, followup_panel

    u, p = world.users, patients.pA1
    fu = record(by=u.doctor_a, patient=p, risk_level=3)
    incident(by=u.police_a, patient=p, place="菜市场")
    doctor = render_to_string(
        "followups/partials/_patient_followups.html", followup_panel(user=u.doctor_a, patient=p)
    )
    assert f"/followups/new/{p.pk}/" in doctor and fu.visit_date.isoformat() in doctor
    police = render_to_string(
        "followups/partials/_patient_alerts.html", alert_panel(user=u.police_a, patient=p)
    )
    assert "高风险" in police and "菜市场" in police
    assert f"/followups/incidents/new/?patient={p.pk}" in police
    assert followup_panel(user=u.police_a, patient=p)["followup_rows"] == []
    assert alert_panel(user=u.civil, patient=p)["patient_alerts"] == []
