"""The patient pages as each department uses them (PostgreSQL)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from patients import rules
from patients import views as patient_views
from patients.fieldsets import FIELDSETS, FILTERABLE
from patients.models import CareTeamMember, Guardian, Patient
from patients.services import ERR_DUPLICATE, ERR_STALE, care_team_add, patient_update
from patients.tests import factories as pf
from patients.views import COLUMN_FIELDS, LIST_COLUMNS, MSG_REGISTERED

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LIST_URL = reverse("patients:list")
CREATE_URL = reverse("patients:create")
# One budget for 1 and 30 rows: the number of queries must not grow with rows
# (18 measured in a fresh process: session, auth, scope, regions, count, audit,
# page, stats; plus the session-security checks: session epoch, TOTP device,
# break-the-glass grants); a query per row would add at least 20 on a full page.
LIST_QUERY_BUDGET = 24


def detail_url(patient, tab=None):
    url = reverse("patients:detail", kwargs={"pk": patient.pk})
    return f"{url}?tab={tab}" if tab else url


def edit_url(patient):
    return reverse("patients:edit", kwargs={"pk": patient.pk})


def print_url(patient):
    return reverse("patients:print-supplement", kwargs={"pk": patient.pk})


def html(response) -> str:
    return response.content.decode()


def new_resident_id(birth=date(1990, 3, 8), male=True) -> str:
    return pf.resident_id("990102", birth=birth, male=male)


def register_post(**overrides) -> dict:
    """What the register form posts when a doctor fills it in."""
    data = {
        "name": "丁一",
        "id_type": "resident_id",
        "id_number": new_resident_id(),
        "gender": "",
        "birth_date": "",
        "region": "990102001002",
        "address": "城关镇幸福路8号",
        "registered_on": timezone.localdate().isoformat(),
        "diagnosis": "bipolar",
        "poverty": "none",
        "insurance": "resident",
        "certificate": "none",
        "first_onset_precision": "year",
        "first_onset_date": "2015-01-01",
        "first_antipsychotic_precision": "day",
        "past_admissions": "1",
        "past_symptoms": ["hallucination", "suspicion"],
        "danger_minor_trouble": "2",
        "guardian_name": "丁父",
        "guardian_relation": "父亲",
        "guardian_phone": "13900000001",
        "guardian_address": "同住",
        "guardian_responsibility_letter": "on",
        "ag-TOTAL_FORMS": "3",
        "ag-INITIAL_FORMS": "0",
        "ag-MIN_NUM_FORMS": "0",
        "ag-MAX_NUM_FORMS": "3",
        "ag-0-name": "村干部甲",
        "ag-0-relation": "村干部",
        "ag-0-phone": "13900000002",
        "ag-1-name": "网格员乙",
        "ag-1-relation": "网格员",
        "ag-1-phone": "",
        "ag-2-name": "",
        "ag-2-relation": "",
        "ag-2-phone": "",
    }
    data.update(overrides)
    return data


def _post_value(value):
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def form_post(response, **overrides) -> dict:
    """Resubmit a rendered edit form as the browser would, with changes."""
    data = {}
    form = response.context["form"]
    for bf in form:
        value = bf.value()
        if bf.widget_type == "checkbox":
            if value:
                data[bf.html_name] = "on"
            continue
        if isinstance(value, list):
            data[bf.html_name] = [str(v) for v in value]
            continue
        data[bf.html_name] = _post_value(value)
    formset = response.context.get("formset")
    if formset is not None:
        mf = formset.management_form
        for bf in mf:
            data[bf.html_name] = _post_value(bf.value())
        for sub in formset.forms:
            for bf in sub:
                data[bf.html_name] = _post_value(bf.value())
    data.update(overrides)
    return data


# --------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------


def test_doctor_lists_own_township_only(client, world, patients):
    client.force_login(world.users.doctor_a)
    response = client.get(LIST_URL)
    assert response.status_code == 200
    page = html(response)
    assert patients.pA1.name in page
    assert patients.pB1.name not in page
    assert patients.pC1.name not in page


def test_police_never_sees_diagnosis_in_list_or_detail(client, world, patients):
    assert patients.pA1.diagnosis == "schizophrenia"
    client.force_login(world.users.police_a)
    pages = [client.get(LIST_URL)]
    pages += [
        client.get(detail_url(patients.pA1, tab))
        for tab in (None, "identity", "supplement", "guardians", "care-team", "history")
    ]
    for response in pages:
        assert response.status_code == 200
        page = html(response)
        assert "诊断" not in page
        assert "精神分裂症" not in page
        assert "schizophrenia" not in page
    assert patients.pA1.name in html(pages[0])


def test_police_history_hides_a_diagnosis_change(client, world, patients):
    patient_update(
        by=world.users.doctor_a,
        pk=patients.pA1.pk,
        data={"diagnosis": "bipolar"},
        expected_version=patients.pA1.version,
    )
    client.force_login(world.users.police_a)
    page = html(client.get(detail_url(patients.pA1, "history")))
    assert "诊断" not in page and "双相" not in page
    client.force_login(world.users.doctor_a)
    page = html(client.get(detail_url(patients.pA1, "history")))
    assert "目前诊断" in page


def test_official_gets_no_rows(client, world, patients):
    client.force_login(world.users.official)
    response = client.get(LIST_URL)
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 0
    page = html(response)
    for p in (patients.pA1, patients.pB1, patients.pC1):
        assert p.name not in page


def test_id_number_is_masked_for_everyone_but_health(client, world, patients):
    full = patients.pA1.id_number
    masked = patients.pA1.id_number_masked
    client.force_login(world.users.civil)
    page = html(client.get(LIST_URL))
    assert masked in page and full not in page
    page = html(client.get(detail_url(patients.pA1)))
    assert masked in page and full not in page
    client.force_login(world.users.doctor_a)
    page = html(client.get(LIST_URL))
    assert full in page


def test_search_by_name_and_exact_id_number_is_audited(client, world, patients):
    client.force_login(world.users.hospital)  # county A
    response = client.get(LIST_URL, {"q": "乙"})
    rows = [r["patient"] for r in response.context["rows"]]
    assert rows == [patients.pB1]
    response = client.get(LIST_URL, {"q": patients.pA1.id_number})
    assert [r["patient"] for r in response.context["rows"]] == [patients.pA1]
    event = AuditEvent.objects.filter(action="patient.search").latest("id")
    assert event.actor_id == world.users.hospital.pk
    assert event.detail["results"] == 1
    assert "term_hash" in event.detail
    assert patients.pA1.id_number not in str(event.detail)


def test_filters_are_those_of_the_field_set(client, world, patients):
    client.force_login(world.users.governance)  # county A, no diagnosis filter
    response = client.get(LIST_URL, {"diagnosis": "bipolar"})
    assert "diagnosis" not in response.context["form"].fields
    assert {r["patient"] for r in response.context["rows"]} == {patients.pA1, patients.pB1}
    client.force_login(world.users.police_a)
    fields = set(client.get(LIST_URL).context["form"].fields)
    assert "diagnosis" not in fields and "overdue" not in fields
    assert "risk" in fields and "status" in fields


def test_health_filters_by_diagnosis_status_and_risk(client, world, patients):
    bipolar = pf.patient(by=world.users.doctor_b, village="990102002002", diagnosis="bipolar")
    Patient.objects.filter(pk=bipolar.pk).update(risk_level=4)
    client.force_login(world.users.hospital)
    rows = client.get(LIST_URL, {"diagnosis": "bipolar"}).context["rows"]
    assert [r["patient"] for r in rows] == [bipolar]
    rows = client.get(LIST_URL, {"risk": "high"}).context["rows"]
    assert [r["patient"] for r in rows] == [bipolar]
    rows = client.get(LIST_URL, {"status": "lost"}).context["rows"]
    assert rows == []


def test_township_and_village_choices_come_from_the_scope(client, world, patients):
    client.force_login(world.users.hospital)  # county A: townships A1, A2
    form = client.get(LIST_URL).context["form"]
    townships = [code for code, _label in form.fields["township"].choices if code]
    assert townships == ["990102001", "990102002"]
    villages = [code for _group, rows in form.fields["village"].choices[1:] for code, _ in rows]
    assert "990103001001" not in villages and "990102002001" in villages
    rows = client.get(LIST_URL, {"township": "990102002"}).context["rows"]
    assert [r["patient"] for r in rows] == [patients.pB1]
    # a township outside the scope is not a valid choice: nothing more is shown
    response = client.get(LIST_URL, {"township": "990103001"})
    assert not response.context["form"].is_valid()
    client.force_login(world.users.doctor_a)
    form = client.get(LIST_URL).context["form"]
    villages = [code for _group, rows in form.fields["village"].choices[1:] for code, _ in rows]
    assert villages == ["990102001001", "990102001002"]


def _village_codes(response) -> list[str]:
    form = response.context["form"]
    return [code for _group, rows in form.fields["village"].choices[1:] for code, _ in rows]


def test_a_large_scope_offers_the_villages_of_the_chosen_township(
    client, world, patients, monkeypatch
):
    # county A has 4 villages: above this bound, villages follow the township
    monkeypatch.setattr(patient_views, "MAX_VILLAGE_CHOICES", 3)
    client.force_login(world.users.hospital)
    response = client.get(LIST_URL)
    assert _village_codes(response) == []
    assert "请先选择乡镇（街道）。" in html(response)
    assert {r["patient"] for r in response.context["rows"]} == {patients.pA1, patients.pB1}
    response = client.get(LIST_URL, {"township": "990102002"})
    assert _village_codes(response) == ["990102002001", "990102002002"]
    # a chosen village implies its township (a bookmarked link keeps working)
    response = client.get(LIST_URL, {"village": "990102002001"})
    assert _village_codes(response) == ["990102002001", "990102002002"]
    assert [r["patient"] for r in response.context["rows"]] == [patients.pB1]
    # the township changed under a village of another: the village is dropped,
    # and the htmx answer carries the new township's village field (out of band)
    response = client.get(
        LIST_URL,
        {"township": "990102001", "village": "990102002001"},
        headers={"HX-Request": "true"},
    )
    assert response.context["form"].is_valid()
    assert [r["patient"] for r in response.context["rows"]] == [patients.pA1]
    page = html(response)
    oob = page[page.index('id="village-filter"') :]
    assert 'hx-swap-oob="true"' in oob
    assert 'value="990102001001"' in oob and "990102002001" not in oob


def test_small_scopes_keep_every_village_and_no_out_of_band_field(client, world, patients):
    client.force_login(world.users.doctor_a)  # one township: no township field
    response = client.get(LIST_URL, {"village": "990102001001"}, headers={"HX-Request": "true"})
    assert _village_codes(response) == ["990102001001", "990102001002"]
    assert "hx-swap-oob" not in html(response)


def test_list_cells_are_escaped_and_show_the_row_s_state(client, world, patients):
    Patient.objects.filter(pk=patients.pA1.pk).update(
        name="<b>甲一</b>", risk_level=4, next_followup_due=date(2020, 1, 2)
    )
    client.force_login(world.users.doctor_a)
    page = html(client.get(LIST_URL))
    assert "<b>甲一</b>" not in page and "&lt;b&gt;甲一&lt;/b&gt;" in page
    assert '<span class="badge risk-4">4级</span>' in page
    assert '2020-01-02 <span class="badge overdue">逾期</span>' in page
    assert f'class="mono">{patients.pA1.id_number}</td>' in page
    client.force_login(world.users.police_a)
    page = html(client.get(LIST_URL))
    assert '<span class="muted">未列管</span>' in page
    assert patients.pA1.id_number not in page  # police see the masked number


def test_county_lists_have_their_covering_index():
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'patient_region_cover'")
        (definition,) = cur.fetchone()
    assert "(region_id, name, id)" in definition
    assert "INCLUDE (id_number_index, status, next_followup_due" in definition
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'patients_patient'"
            " AND indexdef ~ '\\(region_id( varchar_pattern_ops)?\\)$'"
        )
        # no narrower index on region_id to take the planner away from it
        assert cur.fetchall() == []


def test_htmx_filter_renders_only_the_rows(client, world, patients):
    client.force_login(world.users.doctor_a)
    response = client.get(LIST_URL, {"status": "active"}, headers={"HX-Request": "true"})
    page = html(response)
    assert response.status_code == 200
    assert "<html" not in page and "patient-table" in page
    assert "HX-Request" in response["Vary"]
    assert "<html" in html(client.get(LIST_URL, {"status": "active"}))


def test_pagination_keeps_the_filters(client, world):
    for i in range(21):
        pf.patient(by=world.users.doctor_a, village="990102001001", name=f"翻页{i:02d}")
    client.force_login(world.users.doctor_a)
    response = client.post(LIST_URL, {"status": "active", "q": "翻页"})
    assert len(response.context["rows"]) == 20
    page = html(response)
    # the next pages submit the filter form again: nothing in a link
    assert re.search(r'<button type="submit" form="patient-filter" name="page" value="2"', page)
    assert "page=2" not in page
    second = client.post(LIST_URL, {"status": "active", "q": "翻页", "page": 2})
    assert len(second.context["rows"]) == 1


def test_search_terms_stay_out_of_every_url(client, world, patients):
    """No personal data in URLs (SECURITY.md): the search form POSTs, htmx
    pushes no URL, and no link of the answer carries the term."""
    client.force_login(world.users.doctor_a)
    page = html(client.get(LIST_URL))
    form = re.search(r'<form[^>]*id="patient-filter"[^>]*>', page, re.S).group(0)
    assert 'method="post"' in form and "hx-post=" in form
    assert "hx-get=" not in form and "hx-push-url" not in form and "hx-replace-url" not in form
    number = patients.pA1.id_number
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(LIST_URL, {"q": number}, headers=headers)
        assert response.status_code == 200
        assert [r["patient"] for r in response.context["rows"]] == [patients.pA1]
        assert "HX-Push-Url" not in response and "HX-Replace-Url" not in response
        hrefs = " ".join(re.findall(r'(?:href|hx-get|hx-post|action)="([^"]*)"', html(response)))
        assert number not in hrefs and "q=" not in hrefs


def test_each_listed_patient_is_an_audited_read(client, world, patients):
    client.force_login(world.users.hospital)  # county A: pA1 and pB1
    client.post(LIST_URL, {"q": "一"})
    listed = AuditEvent.objects.filter(action="patient.list", actor=world.users.hospital)
    assert set(listed.values_list("object_id", flat=True)) == {
        str(patients.pA1.pk),
        str(patients.pB1.pk),
    }


@pytest.mark.parametrize("rows", [1, 30])
def test_list_query_count_is_constant(client, world, rows, django_assert_max_num_queries):
    for i in range(rows):
        pf.patient(by=world.users.doctor_a, village="990102001001", name=f"计数{i:02d}")
    client.force_login(world.users.doctor_a)
    with django_assert_max_num_queries(LIST_QUERY_BUDGET):
        response = client.get(LIST_URL)
    assert len(response.context["rows"]) == min(rows, 20)
    with django_assert_max_num_queries(LIST_QUERY_BUDGET):
        client.get(LIST_URL, {"q": "计数", "status": "active"}, headers={"HX-Request": "true"})


def test_list_columns_stay_inside_each_field_set():
    for fieldset, columns in LIST_COLUMNS.items():
        for column in columns:
            assert set(COLUMN_FIELDS[column]) <= set(FIELDSETS[fieldset]), (fieldset, column)
    assert "diagnosis" not in LIST_COLUMNS["police"]
    assert set(LIST_COLUMNS) == set(FILTERABLE)


def test_home_of_a_doctor_is_the_patient_list(client, world, patients):
    client.force_login(world.users.doctor_a)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == LIST_URL
    page = html(client.get(LIST_URL))
    assert "登记患者" in page and "在册患者" in page


# --------------------------------------------------------------------------
# detail
# --------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["pB1", "pC1"])
def test_detail_outside_scope_is_404_and_audited(client, world, patients, other):
    target = getattr(patients, other)
    client.force_login(world.users.doctor_a)
    response = client.get(detail_url(target))
    assert response.status_code == 404
    event = AuditEvent.objects.filter(action="access.denied").latest("id")
    assert event.actor_id == world.users.doctor_a.pk
    assert event.object_id == str(target.pk)
    assert target.name not in html(response)


def test_every_detail_view_is_logged(client, world, patients):
    client.force_login(world.users.doctor_a)
    before = AuditEvent.objects.filter(action="patient.view", object_id=str(patients.pA1.pk))
    assert before.count() == 0
    client.get(detail_url(patients.pA1))
    client.get(detail_url(patients.pA1, "history"), headers={"HX-Request": "true"})
    views = AuditEvent.objects.filter(action="patient.view", object_id=str(patients.pA1.pk))
    assert views.count() == 2
    assert set(views.values_list("actor_id", flat=True)) == {world.users.doctor_a.pk}


def test_tabs_follow_the_field_set(client, world, patients):
    def tabs(user):
        client.force_login(user)
        return [key for key, _label in client.get(detail_url(patients.pA1)).context["tabs"]]

    assert tabs(world.users.doctor_a) == [
        "identity",
        "supplement",
        "guardians",
        "care-team",
        "followups",
        "alerts",
        "history",
    ]
    assert tabs(world.users.police_a) == ["identity", "guardians", "alerts", "history"]
    assert tabs(world.users.governance) == [
        "identity",
        "guardians",
        "care-team",
        "alerts",
        "history",
    ]
    assert tabs(world.users.civil) == ["identity", "guardians", "history"]


def test_followups_tab_links_to_the_visit_form_and_alerts_tab_hides_diagnosis(
    client, world, patients
):
    client.force_login(world.users.doctor_a)
    page = html(client.get(detail_url(patients.pA1, "followups")))
    assert reverse("followups:create", args=[patients.pA1.pk]) in page
    client.force_login(world.users.police_a)
    response = client.get(detail_url(patients.pA1, "alerts"))
    assert response.status_code == 200
    assert "精神分裂症" not in html(response)


def test_detail_shows_guardians_and_history_with_who_and_why(client, world, patients):
    client.force_login(world.users.doctor_a)
    page = html(client.get(detail_url(patients.pA1, "guardians")))
    assert "监护人" in page and "13800000000" in page
    patient_update(
        by=world.users.doctor_a,
        pk=patients.pA1.pk,
        data={"address": "新地址2号"},
        expected_version=1,
        reason="patient.updated",
    )
    response = client.get(detail_url(patients.pA1, "history"))
    rows = response.context["history"]
    assert rows[0]["who"] == "doctor_a"
    assert rows[0]["reason_code"] == "patient.updated"
    assert [str(c) for c in rows[0]["changed"]] == ["现住址"]
    assert rows[-1]["reason_code"] == "patient.registered"


def test_police_reveals_the_full_id_number_with_a_reason(client, world, patients):
    client.force_login(world.users.police_a)
    url = reverse("patients:reveal-id", kwargs={"pk": patients.pA1.pk})
    refused = client.post(url, {"reason": "  "})
    assert refused.status_code == 400
    assert patients.pA1.id_number not in html(refused)
    assert not AuditEvent.objects.filter(action="patient.reveal_id").exists()
    response = client.post(url, {"reason": "现场核对身份"})
    assert response.status_code == 200
    assert patients.pA1.id_number in html(response)
    event = AuditEvent.objects.get(action="patient.reveal_id")
    assert event.actor_id == world.users.police_a.pk
    assert event.object_id == str(patients.pA1.pk)
    assert event.detail == {"reason": "现场核对身份"}
    # shown once: the next page view is masked again
    assert patients.pA1.id_number not in html(client.get(detail_url(patients.pA1)))


def test_reveal_is_for_other_departments_and_in_scope_only(client, world, patients):
    client.force_login(world.users.doctor_a)
    url = reverse("patients:reveal-id", kwargs={"pk": patients.pA1.pk})
    assert client.post(url, {"reason": "x"}).status_code == 403
    client.force_login(world.users.police_b)
    assert client.post(url, {"reason": "核对"}).status_code == 404
    assert client.get(url).status_code == 405


# --------------------------------------------------------------------------
# register
# --------------------------------------------------------------------------


def test_register_happy_path(client, world):
    client.force_login(world.users.doctor_a)
    form_page = client.get(CREATE_URL)
    assert form_page.status_code == 200
    post = register_post()
    response = client.post(CREATE_URL, post)
    assert response.status_code == 302, response.context["form"].errors
    patient = Patient.objects.get(name="丁一")
    assert response.status_code == 302
    assert response["Location"] == detail_url(patient)
    assert patient.birth_date == date(1990, 3, 8) and patient.gender == "male"  # derived
    assert patient.region_id == "990102001002"
    assert patient.past_symptoms == ["hallucination", "suspicion"]
    assert patient.dangerous_history == {"minor_trouble": 2}
    assert patient.first_onset_precision == "year"
    guardian = Guardian.objects.get(patient=patient)
    assert guardian.relation == "父亲" and guardian.responsibility_letter
    assert sorted(a.name for a in patient.assistant_guardians.all()) == ["村干部甲", "网格员乙"]
    assert patient.history.get().history_user_id == world.users.doctor_a.pk
    page = html(client.get(response["Location"]))
    assert str(MSG_REGISTERED % {"name": "丁一"}) in page


def test_register_with_a_bad_checksum_keeps_what_was_typed(client, world):
    number = new_resident_id()
    bad = number[:-1] + ("0" if number[-1] != "0" else "1")
    client.force_login(world.users.doctor_a)
    response = client.post(
        CREATE_URL, register_post(id_number=bad, name="戊二", address="东街99号")
    )
    assert response.status_code == 400
    page = html(response)
    assert rules.ERR_CHECKSUM in page
    assert response.context["form"].errors["id_number"] == [rules.ERR_CHECKSUM]
    assert 'value="戊二"' in page and 'value="东街99号"' in page
    assert 'value="村干部甲"' in page
    assert not Patient.objects.filter(name="戊二").exists()


def test_register_duplicate_id_number_names_the_field(client, world, patients):
    client.force_login(world.users.doctor_a)
    response = client.post(CREATE_URL, register_post(id_number=patients.pB1.id_number))
    assert response.status_code == 400
    assert response.context["form"].errors["id_number"] == [str(ERR_DUPLICATE)]
    assert str(ERR_DUPLICATE) in html(response)
    # the other township's patient is not revealed by name
    assert patients.pB1.name not in html(response)


def test_register_non_resident_id_needs_birth_date_and_gender(client, world):
    client.force_login(world.users.doctor_a)
    response = client.post(CREATE_URL, register_post(id_type="passport", id_number="E1234567"))
    errors = response.context["form"].errors
    assert "birth_date" in errors and "gender" in errors
    ok = client.post(
        CREATE_URL,
        register_post(
            id_type="passport", id_number="E1234567", birth_date="1985-02-03", gender="female"
        ),
    )
    assert ok.status_code == 302, ok.context["form"].errors


def test_register_only_in_own_villages(client, world):
    client.force_login(world.users.doctor_a)
    response = client.post(CREATE_URL, register_post(region="990102002001"))
    assert response.status_code == 400
    assert "region" in response.context["form"].errors
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    "persona", ["police_a", "civil", "dpf", "governance", "official", "finance"]
)
def test_register_is_for_health_staff_only(client, world, persona):
    client.force_login(getattr(world.users, persona))
    assert client.get(CREATE_URL).status_code == 403
    assert client.post(CREATE_URL, register_post()).status_code == 403
    assert not Patient.objects.exists()


# --------------------------------------------------------------------------
# edit
# --------------------------------------------------------------------------


def test_health_edit_saves_and_bumps_the_version(client, world, patients):
    client.force_login(world.users.doctor_a)
    form_page = client.get(edit_url(patients.pA1))
    assert form_page.status_code == 200
    assert form_page.context["form"]["version"].value() == 1
    response = client.post(edit_url(patients.pA1), form_post(form_page, address="新街1号"))
    assert response.status_code == 302
    patients.pA1.refresh_from_db()
    assert patients.pA1.address == "新街1号"
    assert patients.pA1.version == 2
    # the guardian and assistant guardians were unchanged: no new history rows
    assert Guardian.objects.get(patient=patients.pA1).history.count() == 1


def test_edit_with_a_stale_version_keeps_input_and_saves_nothing(client, world, patients):
    client.force_login(world.users.doctor_a)
    form_page = client.get(edit_url(patients.pA1))
    # someone else saves in between
    patient_update(
        by=world.users.doctor_a,
        pk=patients.pA1.pk,
        data={"phone": "13700000000"},
        expected_version=1,
    )
    response = client.post(edit_url(patients.pA1), form_post(form_page, address="我的修改"))
    assert response.status_code == 400
    page = html(response)
    assert str(ERR_STALE) == "该记录已被他人修改，请刷新后重新填写。"
    assert str(ERR_STALE) in page
    assert 'value="我的修改"' in page
    patients.pA1.refresh_from_db()
    assert patients.pA1.address == "测试地址1号"
    assert patients.pA1.version == 2


def test_police_edit_changes_only_police_registered(client, world, patients):
    client.force_login(world.users.police_a)
    form_page = client.get(edit_url(patients.pA1))
    assert form_page.status_code == 200
    assert set(form_page.context["form"].fields) == {"police_registered", "version"}
    post = form_post(form_page, police_registered="on", name="改名", address="改址")
    response = client.post(edit_url(patients.pA1), post)
    assert response.status_code == 302
    patients.pA1.refresh_from_db()
    assert patients.pA1.police_registered is True
    assert patients.pA1.name == "甲一" and patients.pA1.address == "测试地址1号"
    assert patients.pA1.history.latest().history_user_id == world.users.police_a.pk


def test_other_departments_get_their_reduced_forms(client, world, patients):
    client.force_login(world.users.civil)
    form = client.get(edit_url(patients.pA1)).context["form"]
    assert set(form.fields) == {"poverty", "version"}
    client.force_login(world.users.dpf)
    form = client.get(edit_url(patients.pA1)).context["form"]
    assert set(form.fields) == {
        "certificate",
        "certificate_grade",
        "certificate_number",
        "version",
    }
    client.force_login(world.users.governance)
    assert client.get(edit_url(patients.pA1)).status_code == 403
    client.force_login(world.users.police_b)
    assert client.get(edit_url(patients.pA1)).status_code == 404


# --------------------------------------------------------------------------
# print
# --------------------------------------------------------------------------


def test_print_supplement_for_health(client, world, patients):
    client.force_login(world.users.doctor_a)
    response = client.get(print_url(patients.pA1))
    assert response.status_code == 200
    page = html(response)
    assert "严重精神障碍患者个人信息补充表" in page
    assert 'class="form-table"' in page
    assert patients.pA1.name in page
    event = AuditEvent.objects.filter(action="patient.print").latest("id")
    assert event.object_id == str(patients.pA1.pk)
    assert client.get(print_url(patients.pB1)).status_code == 404


def test_print_supplement_refused_to_police(client, world, patients):
    client.force_login(world.users.police_a)
    response = client.get(print_url(patients.pA1))
    assert response.status_code == 403
    assert patients.pA1.name not in html(response)
    assert not AuditEvent.objects.filter(action="patient.print").exists()


# --------------------------------------------------------------------------
# care team
# --------------------------------------------------------------------------


def test_doctor_adds_and_removes_a_care_team_member(client, world, patients):
    client.force_login(world.users.doctor_a)
    add = reverse("patients:care-team-add", kwargs={"pk": patients.pA1.pk})
    response = client.post(add, {"role": "grid_worker", "name": "网格员丙", "phone": "13600000000"})
    assert response.status_code == 302
    member = CareTeamMember.objects.get(patient=patients.pA1)
    assert member.name == "网格员丙"
    page = html(client.get(detail_url(patients.pA1, "care-team")))
    assert "网格员丙" in page
    remove = reverse(
        "patients:care-team-remove", kwargs={"pk": patients.pA1.pk, "member_id": member.pk}
    )
    assert client.post(remove).status_code == 302
    assert not CareTeamMember.objects.filter(patient=patients.pA1).exists()
    assert client.post(remove).status_code == 404


def test_care_team_changes_need_manage_rights(client, world, patients):
    member = care_team_add(
        patient_id=patients.pA1.pk, by=world.users.doctor_a, role="doctor", name="李医生"
    )
    add = reverse("patients:care-team-add", kwargs={"pk": patients.pA1.pk})
    remove = reverse(
        "patients:care-team-remove", kwargs={"pk": patients.pA1.pk, "member_id": member.pk}
    )
    client.force_login(world.users.governance)
    assert client.post(add, {"role": "governance", "name": "综治专干"}).status_code == 403
    assert client.post(remove).status_code == 403
    client.force_login(world.users.doctor_b)
    assert client.post(remove).status_code == 404
    assert CareTeamMember.objects.filter(pk=member.pk).exists()


def test_invalid_care_team_member_shows_the_form_again(client, world, patients):
    client.force_login(world.users.doctor_a)
    add = reverse("patients:care-team-add", kwargs={"pk": patients.pA1.pk})
    response = client.post(add, {"role": "grid_worker", "name": ""})
    assert response.status_code == 400
    assert response.context["tab"] == "care-team"
    assert "name" in response.context["member_form"].errors
