"""Forms of the patient pages: what each department may filter by and write."""

from __future__ import annotations

import pytest

from accounts.models import Region
from patients.forms import (
    ERR_ASSISTANT_NAME,
    ERR_BIRTH_REQUIRED,
    ERR_GENDER_REQUIRED,
    ERR_GUARDIAN_NAME,
    ERR_GUARDIAN_RELATION,
    PatientFilterForm,
    PatientForm,
    assistant_formset,
    assistant_rows,
)
from patients.models import Patient
from patients.tests.factories import resident_id

pytestmark = [pytest.mark.django_db]


def base_data(**overrides):
    data = {
        "name": "测试",
        "id_type": "resident_id",
        "id_number": resident_id(),
        "region": "990102001001",
        "address": "地址",
        "registered_on": "2026-01-05",
        "diagnosis": "schizophrenia",
        "poverty": "none",
        "insurance": "resident",
        "certificate": "none",
        "first_onset_precision": "day",
        "first_antipsychotic_precision": "day",
    }
    data.update(overrides)
    return data


def create_form(data, world):
    villages = list(Region.objects.filter(parent=world.a1).select_related("parent"))
    return PatientForm(data, mode="create", fieldset="health", villages=villages)


def test_filter_form_offers_only_the_field_sets_filters(world):
    towns = [world.a1, world.a2]
    police = PatientFilterForm(None, fieldset="police", townships=towns, villages=[])
    assert set(police.fields) == {"q", "township", "status", "risk"}
    health = PatientFilterForm(None, fieldset="health", townships=towns, villages=[])
    assert {"diagnosis", "overdue", "risk", "status"} <= set(health.fields)
    civil = PatientFilterForm(None, fieldset="civil_affairs", townships=towns, villages=[])
    assert set(civil.fields) == {"q", "township", "status"}
    nobody = PatientFilterForm(None, fieldset=None, townships=[], villages=[])
    assert set(nobody.fields) == {"q"}


def test_filter_form_ignores_a_region_outside_the_choices(world, patients):
    form = PatientFilterForm(
        {"township": "990103001"}, fieldset="health", townships=[world.a1, world.a2], villages=[]
    )
    assert not form.is_valid()
    qs = Patient.objects.all()
    assert form.apply(qs) is qs


def test_resident_id_needs_neither_birth_date_nor_gender(world):
    form = create_form(base_data(), world)
    assert form.is_valid(), form.errors
    data = form.patient_data()
    assert data["region"].code == "990102001001"
    assert data["birth_date"] is None and data["gender"] == ""
    assert data["past_admissions"] == 0
    assert data["dangerous_history"] == {}


def test_other_documents_need_birth_date_and_gender(world):
    form = create_form(base_data(id_type="passport", id_number="E7654321"), world)
    assert not form.is_valid()
    assert form.errors["birth_date"] == [ERR_BIRTH_REQUIRED]
    assert form.errors["gender"] == [ERR_GENDER_REQUIRED]


def test_guardian_needs_a_name_and_a_relation(world):
    form = create_form(base_data(guardian_phone="13900000000"), world)
    assert not form.is_valid()
    assert form.errors["guardian_name"] == [ERR_GUARDIAN_NAME]
    form = create_form(base_data(guardian_name="张三"), world)
    assert not form.is_valid()
    assert form.errors["guardian_relation"] == [ERR_GUARDIAN_RELATION]
    form = create_form(base_data(guardian_name="张三", guardian_relation="父亲"), world)
    assert form.is_valid(), form.errors
    assert form.guardian_data()["relation"] == "父亲"
    assert "responsibility_letter_date" not in form.guardian_data()


def test_a_village_outside_the_scope_is_not_a_choice(world):
    form = create_form(base_data(region="990102002001"), world)
    assert not form.is_valid()
    assert "region" in form.errors


@pytest.mark.parametrize(
    ("fieldset", "fields"),
    [
        ("police", {"police_registered", "version"}),
        ("civil_affairs", {"poverty", "version"}),
        (
            "disabled_federation",
            {"certificate", "certificate_grade", "certificate_number", "version"},
        ),
        ("governance", {"version"}),
    ],
)
def test_edit_form_of_other_departments_is_reduced(fieldset, fields):
    form = PatientForm(None, mode="edit", fieldset=fieldset)
    assert set(form.fields) == fields


def test_health_edit_form_has_no_region_but_a_version():
    form = PatientForm(None, mode="edit", fieldset="health")
    assert "region" not in form.fields
    assert "version" in form.fields and "diagnosis" in form.fields
    assert "specialist_opinion" in form.fields


def test_assistant_guardians_up_to_three_with_names():
    management = {
        "ag-TOTAL_FORMS": "3",
        "ag-INITIAL_FORMS": "0",
        "ag-MIN_NUM_FORMS": "0",
        "ag-MAX_NUM_FORMS": "3",
    }
    formset = assistant_formset({**management, "ag-0-name": "甲", "ag-1-phone": "139"})
    assert not formset.is_valid()
    assert formset.forms[1].errors["name"] == [ERR_ASSISTANT_NAME]
    formset = assistant_formset({**management, "ag-0-name": "甲", "ag-2-name": "丙"})
    assert formset.is_valid()
    assert [r["name"] for r in assistant_rows(formset)] == ["甲", "丙"]
    too_many = assistant_formset({**management, "ag-TOTAL_FORMS": "4", "ag-3-name": "丁"})
    assert not too_many.is_valid()
