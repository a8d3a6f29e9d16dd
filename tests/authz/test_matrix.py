"""The authorization matrix, generated from tests/authz/matrix.py (G1–G3).

- every route of the URL conf has an entry, with every method of class-based
  views, and no entry names a route that is gone;
- every cell: persona × route × method × data position gives the expected
  status; list cells show exactly the expected objects; patient payloads
  carry exactly the persona's field set; no clinical key reaches a
  non-health persona.

Routes are checked by URL namespace (one test each, to build the personas
once); each route's objects live in a savepoint rolled back after the route,
and each request in a savepoint of its own.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from django.db import transaction

from tests.authz.matrix import LOGIN, MATRIX, PERSONAS, Entry, Rows
from tests.authz.objects import POSITIONS, Objects
from tests.authz.routes import all_routes, is_admin_site
from tests.authz.runner import Personas, check, send, url_for

ADMIN_GROUP = "admin:*"
# apps whose models hold patient records or reads of them
PATIENT_APPS = ("patients", "followups", "audit")
ERR_MISSING = "routes without a matrix entry (add them to tests/authz/matrix.py)"


def _routes():
    return {r.name: r for r in all_routes() if not is_admin_site(r)}


def _namespace(name: str) -> str:
    return name.split(":", 1)[0] if ":" in name else "core"


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for name in _routes():
        entry = MATRIX.get(name)
        if entry is not None:
            groups[_namespace(name)].append(name)
    return dict(sorted(groups.items()))


def test_every_route_is_in_the_matrix():
    routes = _routes()
    missing = [
        f"{name} /{r.pattern} ({r.view})" for name, r in routes.items() if name not in MATRIX
    ]
    assert missing == [], f"{ERR_MISSING}:\n" + "\n".join(missing)


def test_no_matrix_entry_names_a_route_that_is_gone():
    routes = set(_routes()) | {ADMIN_GROUP}
    assert sorted(set(MATRIX) - routes) == []


def test_every_project_function_view_declares_its_methods():
    """A function view of the project says which methods it accepts with
    ``require_http_methods`` / ``require_GET`` / ``require_POST`` /
    ``require_safe``: otherwise it answers any method, and nothing proves
    the matrix has a cell for each."""
    undeclared = [
        f"{name} ({r.view})"
        for name, r in _routes().items()
        if r.function and r.project and r.methods is None
    ]
    assert undeclared == []


def test_every_route_has_a_cell_for_every_method_it_accepts():
    """The matrix names exactly the methods each view accepts (class-based
    views' handlers, viewset actions, function views' declared methods);
    only a third-party function view, which declares none, is taken from
    the matrix as it stands."""
    problems = []
    for name, route in _routes().items():
        entry = MATRIX.get(name)
        if entry is None or route.methods is None:
            continue
        if set(entry.methods) != set(route.methods):
            problems.append(
                f"{name}: view has {sorted(route.methods)}, matrix {sorted(entry.methods)}"
            )
    assert problems == []


def test_every_cell_names_every_persona_and_position():
    problems = []
    for name, route in _routes().items():
        entry = MATRIX.get(name)
        if entry is None:
            continue
        for method, cells in entry.methods.items():
            if set(cells) != set(PERSONAS):
                problems.append(f"{name} {method}: personas {sorted(set(PERSONAS) ^ set(cells))}")
            for persona, cell in cells.items():
                positioned = isinstance(cell, tuple)
                if positioned != bool(route.kwargs):
                    problems.append(f"{name} {method} {persona}: cell {cell!r} vs kwargs")
                if isinstance(cell, Rows) and entry.rows is None:
                    problems.append(f"{name}: Rows cells without rows=")
    assert problems == []


def _run_route(name: str, route, entry: Entry, ctx, personas: Personas) -> list[str]:
    problems: list[str] = []
    with transaction.atomic():
        objs = Objects(ctx)
        # build before the first request: a list must already hold its rows
        for kind in {*entry.kwargs.values(), *([entry.rows] if entry.rows else [])}:
            try:
                objs.get(kind)
            except RuntimeError as exc:
                problems.append(f"{name}: {exc}")
                transaction.set_rollback(True)
                return problems
        for method, cells in entry.methods.items():
            for persona in PERSONAS:
                cell = cells[persona]
                positions = POSITIONS if route.kwargs else (None,)
                expected_cells = cell if route.kwargs else (cell,)
                for position, expected in zip(positions, expected_cells, strict=True):
                    try:
                        url = url_for(route, entry, objs, position)
                    except RuntimeError as exc:
                        problems.append(f"{name}: {exc}")
                        break
                    answer = send(
                        personas.client(persona),
                        method,
                        url,
                        api=route.is_api,
                        body=entry.body.get(method),
                        headers=None,
                    )
                    for problem in check(
                        entry=entry,
                        route=route,
                        persona=persona,
                        position=position,
                        expected=expected,
                        answer=answer,
                        fieldset=personas.fieldset(persona),
                        objs=objs,
                        method=method,
                        group=personas.group(persona),
                    ):
                        problems.append(f"{name} {method} {problem}")
        transaction.set_rollback(True)
    return problems


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("namespace", list(_groups()))
def test_matrix(authz, namespace):
    routes = _routes()
    personas = Personas(authz.users, PERSONAS)
    problems: list[str] = []
    for name in _groups()[namespace]:
        problems += _run_route(name, routes[name], MATRIX[name], authz, personas)
    assert not problems, f"{len(problems)} cells differ:\n" + "\n".join(problems)


@pytest.mark.django_db
def test_django_admin_is_for_the_admin_role_only_and_shows_no_patient_data(authz):
    """The admin site (all its generated routes, one matrix group): the
    admin role gets its index, without any patient-bearing model; everyone
    else is sent to the admin login."""
    personas = Personas(authz.users, PERSONAS)
    problems = []
    for persona in PERSONAS:
        answer = send(
            personas.client(persona), "GET", "/admin/", api=False, body=None, headers=None
        )
        expected = MATRIX[ADMIN_GROUP].methods["GET"][persona]
        expected = 302 if expected == LOGIN else expected
        if answer.status != expected:
            problems.append(f"{persona}: {answer.status}, expected {expected}")
        elif expected == 302 and "/admin/login/" not in answer.location:
            problems.append(f"{persona}: sent to {answer.location}")
        elif expected == 200:
            shown = [app for app in PATIENT_APPS if f"/admin/{app}/" in answer.body]
            if shown:
                problems.append(f"{persona}: the admin index offers {shown}")
    assert problems == []


# the methods tried on a route that does not accept them, in this order
UNACCEPTED = ("PUT", "DELETE", "PATCH", "POST")
NOT_ALLOWED = (403, 404, LOGIN)


def _allowed_cell(route, cells) -> tuple[str, str | None] | None:
    """A persona and data position this method's cell lets through; one the
    route serves (a page, a list, a form's errors) before one it redirects
    (the login page sends a signed-in user home whatever the method)."""
    found = []
    for persona in PERSONAS:
        cell = cells[persona]
        expected_cells = cell if route.kwargs else (cell,)
        positions = POSITIONS if route.kwargs else (None,)
        for position, expected in zip(positions, expected_cells, strict=True):
            if expected not in NOT_ALLOWED:
                found.append((expected == 302, persona, position))
    if not found:
        return None
    _redirect, persona, position = min(found, key=lambda f: f[0])
    return persona, position


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_method_the_view_does_not_accept_answers_405(authz):
    """One method per route that its view does not accept, sent by a persona
    the route lets in (preferring one allowed to write, so that a write
    permission check does not hide the answer): 405. Routes no persona may
    use (every cell 403/404) and third-party views that declare no methods
    are left out."""
    personas = Personas(authz.users, PERSONAS)
    problems: list[str] = []
    tried = 0
    with transaction.atomic():
        objs = Objects(authz)
        for name, route in _routes().items():
            entry = MATRIX.get(name)
            if entry is None or route.methods is None:
                continue
            method = next(m for m in UNACCEPTED if m not in route.methods)
            ordered = sorted(entry.methods, key=lambda m: m == "GET")  # writes first
            chosen = None
            for accepted in ordered:
                chosen = _allowed_cell(route, entry.methods[accepted])
                if chosen is not None:
                    break
            if chosen is None:
                continue
            persona, position = chosen
            try:
                url = url_for(route, entry, objs, position)
            except RuntimeError as exc:
                problems.append(f"{name}: {exc}")
                continue
            answer = send(
                personas.client(persona), method, url, api=route.is_api, body=None, headers=None
            )
            tried += 1
            if answer.status != 405:
                problems.append(f"{name} {method} as {persona}: {answer.status}, expected 405")
        transaction.set_rollback(True)
    assert tried > 100, f"only {tried} routes tried"
    assert problems == [], "\n".join(problems)
