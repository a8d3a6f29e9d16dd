"""Identity checks where they bite: the service (patients.services
.check_identity, patient_register), the register page and the API
(DOMAIN.md → Patients: gender and birth date agree with the ID number; one
patient per ID, a legacy 15-digit number included)."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import DomainError
from patients import rules
from patients.models import Patient
from patients.services import (
    ERR_BIRTH_MISMATCH,
    ERR_DUPLICATE,
    ERR_GENDER_MISMATCH,
    check_identity,
    patient_register,
    patient_update,
)

pytestmark = [pytest.mark.django_db]

BIRTH = date(1990, 3, 8)
FEMALE_ID = rules.make_resident_id("990102", BIRTH, 124, male=False)
LEAP_DAY_ID = rules.make_resident_id("990102", date(2000, 2, 29), 37, male=True)


def legacy_15(number18: str) -> str:
    """The 15-digit form of an 18-digit number of someone born in the 1900s."""
    assert number18[6:8] == "19"
    return number18[:6] + number18[8:17]


def register_data(world, **overrides) -> dict:
    from accounts.models import Region

    data = {
        "name": "身份核对",
        "id_number": FEMALE_ID,
        "region": Region.objects.get(code="990102001002"),
        "address": "城关镇幸福路8号",
        "diagnosis": "bipolar",
    }
    data.update(overrides)
    return data


# --- the service ---------------------------------------------------------------------


def test_gender_that_disagrees_with_the_number_is_refused():
    with pytest.raises(DomainError) as exc:
        check_identity(id_type="resident_id", id_number=FEMALE_ID, birth_date=None, gender="male")
    assert exc.value.field == "gender"
    assert exc.value.message == ERR_GENDER_MISMATCH


def test_birth_date_that_disagrees_with_the_number_is_refused():
    with pytest.raises(DomainError) as exc:
        check_identity(
            id_type="resident_id", id_number=FEMALE_ID, birth_date=date(1990, 3, 9), gender=None
        )
    assert exc.value.field == "birth_date"
    assert exc.value.message == ERR_BIRTH_MISMATCH


def test_agreeing_or_missing_gender_and_birth_date_are_derived():
    assert check_identity(
        id_type="resident_id", id_number=FEMALE_ID, birth_date=BIRTH, gender="female"
    ) == (FEMALE_ID, BIRTH, "female")
    assert check_identity(
        id_type="resident_id", id_number=FEMALE_ID.lower(), birth_date=None, gender=None
    ) == (FEMALE_ID, BIRTH, "female")


def test_a_patient_born_on_29_february_2000_registers(world):
    patient = patient_register(
        by=world.users.doctor_a, data=register_data(world, id_number=LEAP_DAY_ID)
    )
    assert (patient.birth_date, patient.gender) == (date(2000, 2, 29), "male")


def test_29_february_1900_in_the_number_is_refused(world):
    body = "99010219000229001"
    with pytest.raises(DomainError) as exc:
        patient_register(
            by=world.users.doctor_a,
            data=register_data(world, id_number=body + rules.check_char(body)),
        )
    assert exc.value.field == "id_number"
    assert str(exc.value.message) == rules.ERR_BIRTH


def test_a_15_digit_number_of_a_registered_18_digit_patient_is_a_duplicate(world, patients):
    existing = patients.pB1  # another township: the duplicate check is county-wide
    with pytest.raises(DomainError) as exc:
        patient_register(
            by=world.users.doctor_a,
            data=register_data(world, id_number=legacy_15(existing.id_number)),
        )
    assert exc.value.field == "id_number"
    assert exc.value.message == ERR_DUPLICATE
    assert Patient.objects.filter(name="身份核对").count() == 0


def test_retyping_the_own_number_in_15_digits_is_not_a_duplicate(world, patients):
    p = patients.pA1
    updated = patient_update(
        by=world.users.doctor_a,
        pk=p.pk,
        data={"id_number": legacy_15(p.id_number)},
        expected_version=p.version,
    )
    assert updated.id_number == p.id_number


# --- the register page ------------------------------------------------------------------


def page_post(**overrides) -> dict:
    data = {
        "name": "页面核对",
        "id_type": "resident_id",
        "id_number": FEMALE_ID,
        "gender": "",
        "birth_date": "",
        "region": "990102001002",
        "address": "城关镇幸福路9号",
        "registered_on": "2026-01-05",
        "diagnosis": "bipolar",
        "poverty": "none",
        "insurance": "resident",
        "certificate": "none",
        "first_onset_precision": "day",
        "first_antipsychotic_precision": "day",
        "ag-TOTAL_FORMS": "0",
        "ag-INITIAL_FORMS": "0",
        "ag-MIN_NUM_FORMS": "0",
        "ag-MAX_NUM_FORMS": "3",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("gender", "male", ERR_GENDER_MISMATCH), ("birth_date", "1990-03-09", ERR_BIRTH_MISMATCH)],
)
def test_the_register_page_names_a_mismatch_and_keeps_the_input(
    client, world, field, value, message
):
    client.force_login(world.users.doctor_a)
    response = client.post(reverse("patients:create"), page_post(**{field: value}))
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [str(message)]
    assert 'value="页面核对"' in response.content.decode()
    assert not Patient.objects.filter(name="页面核对").exists()


def test_the_register_page_refuses_a_15_digit_duplicate(client, world, patients):
    client.force_login(world.users.doctor_a)
    response = client.post(
        reverse("patients:create"), page_post(id_number=legacy_15(patients.pA1.id_number))
    )
    assert response.status_code == 400
    assert response.context["form"].errors["id_number"] == [str(ERR_DUPLICATE)]


# --- the API ---------------------------------------------------------------------------


def api_post(user, **overrides):
    client = APIClient()
    client.force_authenticate(user=user)
    payload = {
        "name": "接口核对",
        "id_number": FEMALE_ID,
        "region": "990102001002",
        "address": "新村路8号",
        "diagnosis": "bipolar",
        **overrides,
    }
    return client.post("/api/v1/patients/", payload, format="json")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("gender", "male", ERR_GENDER_MISMATCH), ("birth_date", "1990-03-09", ERR_BIRTH_MISMATCH)],
)
def test_the_api_names_a_mismatch(world, field, value, message):
    response = api_post(world.users.doctor_a, **{field: value})
    assert response.status_code == 400
    assert response.json() == {field: [str(message)]}


def test_the_api_refuses_a_15_digit_duplicate(world, patients):
    response = api_post(world.users.doctor_a, id_number=legacy_15(patients.pA1.id_number))
    assert response.status_code == 400
    assert response.json() == {"id_number": [str(ERR_DUPLICATE)]}


def test_the_api_derives_gender_and_birth_date_from_a_resident_id(world):
    response = api_post(world.users.doctor_a)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["gender"], body["birth_date"]) == ("female", "1990-03-08")
    response = api_post(
        world.users.doctor_a,
        name="接口核对二",
        id_number=LEAP_DAY_ID,
        gender="male",
        birth_date="2000-02-29",
    )
    assert response.status_code == 201, response.json()


def test_the_api_needs_gender_and_birth_date_for_other_documents(world):
    response = api_post(world.users.doctor_a, id_type="passport", id_number="E7654321")
    assert response.status_code == 400
    assert set(response.json()) == {"gender", "birth_date"}
    response = api_post(
        world.users.doctor_a,
        id_type="passport",
        id_number="E7654321",
        gender="female",
        birth_date="1985-02-03",
    )
    assert response.status_code == 201, response.json()
