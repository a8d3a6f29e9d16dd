"""Runs one matrix cell: a persona sends one request to one route with the
object of one data position, and the answer is compared with the cell.

Each request runs inside a savepoint that is rolled back, and the client's
cookies are restored afterwards, so a POST (deactivate, logout, revoke …)
leaves nothing behind for the next cell.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts.roles import ROLE_INFO, role_of
from accounts.tests import factories as af
from audit.models import AuditEvent
from patients.fieldsets import CLINICAL, FIELDSETS
from tests.authz.matrix import LOGIN, Entry, Rows
from tests.authz.objects import POSITIONS, Objects
from tests.authz.routes import Route

# Keys no non-health payload may carry anywhere in its JSON tree (DESIGN.md →
# Permissions: police and the other departments never get diagnosis details,
# medication or clinical notes). ``classification`` is shown to police.
CLINICAL_KEYS = (set(CLINICAL) - set(FIELDSETS["police"])) | {
    "medications",
    "medication_guidance",
    "medication_compliance",
    "adverse_reaction_detail",
    "lab_tests",
}
# Keys that identify a patient: none reaches a persona without a patient
# field set (finance, officials, the 三员) anywhere in its JSON tree.
IDENTITY_KEYS = {
    "patient",
    "patient_name",
    "id_number",
    "id_type",
    "birth_date",
    "gender",
    "address",
    "phone",
    "guardian",
    "guardian_name",
    "household_address",
}
# Label of the world's patients' diagnosis (schizophrenia): absent from every
# page about a patient shown to a non-health persona.
DIAGNOSIS_LABEL = "精神分裂症"


@dataclass
class Answer:
    status: int
    location: str
    body: str
    json: object | None
    # ids of the patients the request wrote an audit row against (a read,
    # a search hit, a list row …)
    audited: frozenset[str] = frozenset()


class Personas:
    """One signed-in client per persona (the 三员 with their second factor)."""

    def __init__(self, users, personas=()):
        self.users = users
        self._clients: dict[str, Client] = {}
        # sign in up front: a session made inside a cell's savepoint would
        # be rolled back with it
        for persona in personas:
            self.client(persona)

    def client(self, persona: str) -> Client:
        if persona not in self._clients:
            client = Client(raise_request_exception=False)
            if persona != "anonymous":
                af.login(client, getattr(self.users, persona))
            self._clients[persona] = client
        return self._clients[persona]

    def fieldset(self, persona: str) -> str | None:
        if persona == "anonymous":
            return None
        role = role_of(getattr(self.users, persona))
        return ROLE_INFO[role].fieldset if role else None

    def group(self, persona: str) -> str:
        """The key of ``Entry.fields``: the patient field set, or the role
        for roles without one."""
        if persona == "anonymous":
            return "anonymous"
        fieldset = self.fieldset(persona)
        if fieldset:
            return fieldset
        return str(role_of(getattr(self.users, persona)))


def url_for(route: Route, entry: Entry, objs: Objects, position: str | None) -> str:
    kwargs = {}
    for name in route.kwargs:
        kind = entry.kwargs.get(name)
        if kind is None:
            raise AssertionError(
                f"{route.name}: the matrix entry names no object kind for <{name}>"
            )
        obj = objs.get(kind)[position]
        kwargs[name] = obj.extra.get(name, obj.key)
    return reverse(route.name, kwargs=kwargs)


def send(client: Client, method: str, url: str, *, api: bool, body, headers) -> Answer:
    saved = copy.deepcopy(client.cookies)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
    try:
        with transaction.atomic():
            before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
            if method == "GET":
                response = client.get(url, body or {}, **extra)
            elif api:
                response = client.generic(
                    method, url, json.dumps(body or {}), "application/json", **extra
                )
            elif method == "POST":
                response = client.post(url, body or {}, **extra)
            else:
                response = client.generic(method, url, **extra)
            content = b"" if getattr(response, "streaming", False) else response.content
            audited = frozenset(
                AuditEvent.objects.filter(id__gt=before, object_type="patient").values_list(
                    "object_id", flat=True
                )
            )
            transaction.set_rollback(True)
    finally:
        client.cookies = saved
    data = None
    if "json" in response.get("Content-Type", ""):
        try:
            data = json.loads(content)
        except ValueError:
            data = None
    text = content.decode("utf-8", "replace") if b"\x00" not in content[:2048] else ""
    return Answer(response.status_code, response.get("Location", ""), text, data, audited)


def _keys_anywhere(data, keys: set[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        found |= keys & set(data)
        for value in data.values():
            found |= _keys_anywhere(value, keys)
    elif isinstance(data, list):
        for value in data:
            found |= _keys_anywhere(value, keys)
    return found


def _field_problems(fields: dict, group: str, data: dict, where: str) -> list[str]:
    """Each object of the answer (each row of a page) has exactly the keys
    the entry allows the group."""
    rows = data["results"] if isinstance(data.get("results"), list) else [data]
    if not rows:
        return []
    if group not in fields:
        return [f"{where}: {len(rows)} object(s) for {group}, which has no field set here"]
    allowed = set(fields[group])
    for row in rows:
        if set(row) != allowed:
            return [
                f"{where}: keys extra {sorted(set(row) - allowed)}, "
                f"missing {sorted(allowed - set(row))} for {group}"
            ]
    return []


def check(
    *,
    entry: Entry,
    route: Route,
    persona: str,
    position: str | None,
    expected,
    answer: Answer,
    fieldset: str | None,
    objs: Objects,
    method: str = "GET",
    group: str = "",
) -> list[str]:
    """The problems of one cell (empty when it matches)."""
    where = f"{persona} {position or '-'}"
    problems: list[str] = []
    if expected == LOGIN:
        if route.is_api:
            if answer.status != 401:
                problems.append(f"{where}: status {answer.status}, expected 401")
        elif answer.status != 302 or not answer.location.startswith(reverse("accounts:login")):
            problems.append(
                f"{where}: status {answer.status} → {answer.location!r}, expected 302 to login"
            )
        return problems
    want = expected.status if isinstance(expected, Rows) else expected
    if answer.status != want:
        problems.append(f"{where}: status {answer.status}, expected {want}")
        return problems
    if isinstance(expected, Rows):
        shown = objs.get(entry.rows)
        for pos in POSITIONS:
            present = any(m in answer.body for m in shown[pos].markers)
            if present != (pos in expected.positions):
                state = "shown" if present else "missing"
                problems.append(f"{where}: the {pos} object is {state} in the list")
    if answer.status in (200, 201) and fieldset != "health":
        leaked = _keys_anywhere(answer.json, CLINICAL_KEYS)
        if leaked:
            problems.append(f"{where}: clinical keys {sorted(leaked)} for {fieldset}")
        if entry.patient_page and answer.json is None and DIAGNOSIS_LABEL in answer.body:
            problems.append(f"{where}: the diagnosis is shown to {fieldset}")
    if answer.status in (200, 201) and fieldset is None:
        leaked = _keys_anywhere(answer.json, IDENTITY_KEYS)
        if leaked:
            problems.append(f"{where}: identity keys {sorted(leaked)} for {group}")
    if entry.fields and answer.status in (200, 201) and isinstance(answer.json, dict):
        problems += _field_problems(entry.fields, group, answer.json, where)
    if answer.status == 200 and method == "GET":
        # every read of patient data is audited (G12): each of the world's
        # patients whose name the answer shows has an audit row of this
        # request against it
        for pos, patient in objs.get("patient").items():
            name = patient.markers[0]
            if name in answer.body and str(patient.key) not in answer.audited:
                problems.append(f"{where}: shows the {pos} patient without an audit row")
    if entry.payload == "patient" and answer.status in (200, 201) and answer.json is not None:
        allowed = set(FIELDSETS.get(fieldset or "", ()))
        rows = answer.json.get("results", [answer.json])
        for row in rows:
            if set(row) != allowed:
                problems.append(
                    f"{where}: payload keys extra {sorted(set(row) - allowed)}, "
                    f"missing {sorted(allowed - set(row))}"
                )
                break
    return problems
