"""The permission matrix of the patient API (SECURITY.md → authorization
matrix, G1–G3), generated from ONE table.

Every persona of the root conftest × every operation of /api/v1/patients/ ×
the three data positions: pA1 (township A1, "own" for the *_a personas), pB1
(township A2 of the same county) and pC1 (another county). A cell is the
expected HTTP status; for a 200/201 the payload's keys must be exactly the
department's allowlist below (keys outside it absent, not null).
"""

from __future__ import annotations

from datetime import date

import pytest
from rest_framework.test import APIClient

from patients import rules
from patients.api import urls as patient_api_urls

LIST_URL = "/api/v1/patients/"
TARGETS = ("pA1", "pB1", "pC1")
# where a "create" cell registers its new patient: a village in the target's township
CREATE_VILLAGE = {"pA1": "990102001002", "pB1": "990102002002", "pC1": "990103001002"}

# --- what each department sees (explicit, not read from patients.fieldsets) --
IDENTITY = {"id", "name", "gender", "birth_date", "id_type", "id_number", "region"} | {
    "address",
    "phone",
    "status",
}
POLICE = IDENTITY | {
    "guardian",
    "assistant_guardians",
    "risk_level",
    "next_followup_due",
    "overdue",
    "police_registered",
    "classification",
    "version",
}
GOVERNANCE = POLICE | {"care_team"}
CIVIL_AFFAIRS = IDENTITY | {
    "guardian",
    "poverty",
    "insurance",
    "union_member",
    "in_community_rehab",
    "version",
}
DISABLED_FEDERATION = IDENTITY | {
    "guardian",
    "certificate",
    "certificate_grade",
    "certificate_number",
    "in_community_rehab",
    "version",
}
HEALTH = (
    POLICE
    | GOVERNANCE
    | CIVIL_AFFAIRS
    | DISABLED_FEDERATION
    | {"diagnosis", "diagnosis_hospital", "diagnosis_date", "last_followup_date", "in_hospital"}
    | {"household_region", "household_address", "ethnicity", "village_contact_name"}
    | {"village_contact_phone", "household_type", "employment", "consent", "consent_signer"}
    | {"consent_date", "first_onset_date", "first_onset_precision", "past_symptoms"}
    | {"past_symptoms_other", "past_lock_status", "past_outpatient", "first_antipsychotic_date"}
    | {"first_antipsychotic_precision", "past_admissions", "recent_treatment_effect"}
    | {"dangerous_history", "economic_status", "specialist_opinion", "supplement_filled_on"}
    | {"registered_on", "managing_organisation", "status_changed_at"}
)
# never shown outside health, whatever else changes (DESIGN.md → Permissions)
CLINICAL = {
    "diagnosis",
    "diagnosis_hospital",
    "diagnosis_date",
    "last_followup_date",
    "in_hospital",
    "past_symptoms",
    "past_lock_status",
    "past_outpatient",
    "first_antipsychotic_date",
    "recent_treatment_effect",
    "dangerous_history",
    "specialist_opinion",
}
# API.md's named fields, all present for health
API_MD_FIELDS = {
    "id",
    "name",
    "gender",
    "id_number",
    "birth_date",
    "region",
    "address",
    "phone",
    "diagnosis",
    "status",
    "risk_level",
    "classification",
    "next_followup_due",
    "overdue",
    "guardian",
}

# A PATCH each department is allowed to send (fieldsets.WRITABLE); departments
# that may write nothing send one anyway.
PATCH_BODY = {
    "health": {"address": "矩阵地址1号"},
    "police": {"police_registered": True},
    "governance": {"police_registered": True},
    "civil_affairs": {"poverty": "dibao"},
    "disabled_federation": {"certificate": "applied"},
    None: {"address": "矩阵地址1号"},
}

IN, OUT = "in", "out"  # list cells: 200 and the target is / is not among the rows
x3 = 3 * (None,)

# fmt: off
#              persona       department             keys                 list               detail             create             patch
#                                                                        pA1  pB1  pC1      pA1  pB1  pC1      pA1  pB1  pC1      pA1  pB1  pC1
MATRIX = [
    ("doctor_a",   "health",              HEALTH,              (IN,  OUT, OUT), (200, 404, 404), (201, 400, 400), (200, 404, 404)),
    ("doctor_b",   "health",              HEALTH,              (OUT, IN,  OUT), (404, 200, 404), (400, 201, 400), (404, 200, 404)),
    ("doctor_c",   "health",              HEALTH,              (OUT, OUT, IN),  (404, 404, 200), (400, 400, 201), (404, 404, 200)),
    ("hospital",   "health",              HEALTH,              (IN,  IN,  OUT), (200, 200, 404), (201, 201, 400), (200, 200, 404)),
    ("police_a",   "police",              POLICE,              (IN,  OUT, OUT), (200, 404, 404), (403, 403, 403), (200, 404, 404)),
    ("police_b",   "police",              POLICE,              (OUT, IN,  OUT), (404, 200, 404), (403, 403, 403), (404, 200, 404)),
    ("governance", "governance",          GOVERNANCE,          (IN,  IN,  OUT), (200, 200, 404), (403, 403, 403), (403, 403, 404)),
    ("civil",      "civil_affairs",       CIVIL_AFFAIRS,       (IN,  IN,  OUT), (200, 200, 404), (403, 403, 403), (200, 200, 404)),
    ("dpf",        "disabled_federation", DISABLED_FEDERATION, (IN,  IN,  OUT), (200, 200, 404), (403, 403, 403), (200, 200, 404)),
    ("finance",    None,                  set(),               (403, 403, 403), (404, 404, 404), (403, 403, 403), (404, 404, 404)),
    ("official",   None,                  set(),               (403, 403, 403), (404, 404, 404), (403, 403, 403), (404, 404, 404)),
    ("admin",      None,                  set(),               (403, 403, 403), (404, 404, 404), (403, 403, 403), (404, 404, 404)),
    ("anonymous",  None,                  set(),               (401, 401, 401), (401, 401, 401), (401, 401, 401), (401, 401, 401)),
]
# fmt: on
OPERATIONS = ("list", "detail", "create", "patch")
# the routes of patients.api and what each method does there: a new route or
# method fails test_every_route_of_the_patient_api_is_in_the_matrix
ROUTES = {
    "patient-list": {"get": "list", "post": "create"},
    "patient-detail": {"get": "retrieve", "patch": "partial_update"},
}
ROW = {row[0]: row for row in MATRIX}


def _client(world, persona: str) -> APIClient:
    client = APIClient()
    if persona != "anonymous":
        client.force_authenticate(user=getattr(world.users, persona))
    return client


def _etag(patient) -> str:
    patient.refresh_from_db()
    return f'"{patient.version}"'


def _new_patient(target: str, n: int) -> dict:
    birth = date(1966, 7, 1 + n)
    return {
        "name": f"矩阵新患者{n}",
        "gender": "male",
        "id_number": rules.make_resident_id("990102", birth, 311, male=True),
        "birth_date": birth.isoformat(),
        "region": CREATE_VILLAGE[target],
        "address": "矩阵路1号",
        "diagnosis": "delusional",
    }


def _check_payload(payload: dict, keys: set, department: str | None, where: str, problems):
    if set(payload) != keys:
        problems.append(
            f"{where}: extra {sorted(set(payload) - keys)}, missing {sorted(keys - set(payload))}"
        )
    if department != "health" and CLINICAL & set(payload):
        problems.append(f"{where}: clinical keys {sorted(CLINICAL & set(payload))}")


def _run(operation, client, patients, target, n, department):
    patient = getattr(patients, target)
    url = f"{LIST_URL}{patient.pk}/"
    if operation == "list":
        return client.get(LIST_URL, {"page_size": 100})
    if operation == "detail":
        return client.get(url)
    if operation == "create":
        return client.post(LIST_URL, _new_patient(target, n), format="json")
    return client.patch(url, PATCH_BODY[department], format="json", HTTP_IF_MATCH=_etag(patient))


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("persona", [row[0] for row in MATRIX])
def test_patient_api_matrix(world, patients, persona, operation):
    _, department, keys, *cells = ROW[persona]
    expected_cells = dict(zip(OPERATIONS, cells, strict=True))[operation]
    client = _client(world, persona)
    problems: list[str] = []
    for n, (target, expected) in enumerate(zip(TARGETS, expected_cells, strict=True)):
        where = f"{persona} {operation} {target}"
        response = _run(operation, client, patients, target, n, department)
        target_id = str(getattr(patients, target).pk)
        if expected in (IN, OUT):
            if response.status_code != 200:
                problems.append(f"{where}: status {response.status_code}, expected 200")
                continue
            rows = {row["id"]: row for row in response.json()["results"]}
            if (target_id in rows) != (expected == IN):
                problems.append(f"{where}: expected the patient {expected} the list")
            if target_id in rows:
                _check_payload(rows[target_id], keys, department, where, problems)
            continue
        if response.status_code != expected:
            problems.append(f"{where}: status {response.status_code}, expected {expected}")
            continue
        body = response.content.decode()
        if expected in (200, 201):
            _check_payload(response.json(), keys, department, where, problems)
            if "ETag" not in response:
                problems.append(f"{where}: no ETag")
        else:
            # a refusal says nothing about the patient
            if getattr(patients, target).name in body:
                problems.append(f"{where}: refusal names the patient")
        if operation == "create" and expected == 400 and "region" not in response.json():
            problems.append(f"{where}: 400 does not name region")
        if response["Cache-Control"] != "no-store":
            problems.append(f"{where}: Cache-Control {response['Cache-Control']!r}")
    assert problems == []


def test_health_payload_has_every_field_api_md_names():
    assert API_MD_FIELDS <= HEALTH
    assert "diagnosis" not in POLICE and "classification" in POLICE


def test_every_persona_of_the_conftest_is_in_the_matrix(world):
    personas = set(vars(world.users)) | {"anonymous"}

    assert personas == set(ROW)


def test_every_route_of_the_patient_api_is_in_the_matrix():
    # HEAD is answered by the GET action
    routes = {
        pattern.name: {m: a for m, a in pattern.callback.actions.items() if m != "head"}
        for pattern in patient_api_urls.urlpatterns
    }

    assert routes == ROUTES
    covered = {"list": "list", "retrieve": "detail", "create": "create"}
    covered["partial_update"] = "patch"
    actions = {action for methods in ROUTES.values() for action in methods.values()}
    assert {covered[a] for a in actions} == set(OPERATIONS)
