"""Export is a permission of its own, needs a reason and is audited — for
every export of the app (SECURITY.md G14; issue 7 item 5).

The export routes are found in the URL conf (views marked with
``accounts.exports.export_view``); each must have a case below, and a view
that writes a file (an attachment) without the mark fails
``test_every_file_view_is_a_marked_export``, so a new export cannot escape.
For each export:
- without the permission: 403 on GET and on a POST with a reason, no file;
- with it: GET shows the reason form; a POST without a valid reason shows
  the form again with the Chinese error, no file, no audit row;
- a POST with a reason gives the file and one ``data.export`` audit row
  naming the user, the export and the reason.
"""

from __future__ import annotations

import inspect
from io import BytesIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.exports import ERR_EXPORT_REASON, export_reason, export_view
from accounts.roles import Role
from accounts.tests import factories as af
from audit.models import AuditEvent
from audit.services import EXPORT_ACTION
from tests.authz.routes import all_routes, is_admin_site

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# Views that answer with a file but export no data of the register.
NOT_EXPORTS = {
    "referrals:import-template": "the empty roster template (column headers only)",
    "api-schema": "the OpenAPI schema document (drf-spectacular; no register data)",
}
# What in a view's source means "answers with a file".
FILE_MARKERS = ("Content-Disposition", "xlsx_response", "FileResponse", "as_attachment")


def _export_routes() -> dict[str, object]:
    return {
        r.name: r
        for r in all_routes()
        if not is_admin_site(r) and getattr(_callback(r.name), "export_what", None)
    }


def _callback(name: str):
    from django.urls import get_resolver

    for route in _walk(get_resolver().url_patterns, None):
        if route[0] == name:
            return route[1]
    return None


def _walk(patterns, namespace):
    from django.urls import URLPattern, URLResolver

    for p in patterns:
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
            yield from _walk(p.url_patterns, ns)
        elif isinstance(p, URLPattern) and p.name:
            yield (f"{namespace}:{p.name}" if namespace else p.name), p.callback


# --- one case per export: (the user who may export, the URL with its filters) --


def _last_quarter(today):
    quarter = (today.month - 1) // 3 + 1
    year, quarter = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)
    return f"{year}Q{quarter}"


def _overdue(world, patients):
    return world.users.doctor_a, reverse("followups:overdue-export") + "?risk=1"


def _batch(world, patients):
    from subsidies import services
    from subsidies.tests import factories as sf

    sf.reward_policy(world.county_a)
    today = timezone.localdate()
    batch, _ = services.batch_draw(
        region=world.county_a, period_code=_last_quarter(today), today=today
    )
    return world.users.civil, reverse("subsidies:batch-export", args=[batch.pk])


def _statement(world, patients):
    from subsidies.tests import factories as sf

    sf.settlement_policy(world.county_a)
    month = f"{timezone.localdate():%Y-%m}"
    url = reverse("subsidies:statement-export") + f"?payer=civil_affairs&month={month}"
    return world.users.civil, url


def _indicators(world, patients):
    return world.users.official, reverse("reports:export-indicators") + "?region=990102"


def _exchange_form(world, patients):
    return world.users.official, reverse("reports:export-exchange") + "?region=990102"


def _package(world, patients):
    from referrals import rules
    from referrals.services.exchange import exchange_build
    from referrals.tests import factories as rf

    prevention = af.staff("export_prevention", Role.PREVENTION_STAFF, world.org.prevention_a)
    partner = rf.partner(by=prevention, organisation=world.org.pb_a, folder="/tmp")
    period = rules.last_finished_period(timezone.localdate(), "quarterly")
    run = exchange_build(partner=partner, kind="scheduled", period=period)
    return prevention, reverse("referrals:run-download", args=[run.pk])


def _high_risk(world, patients):
    from patients.models import Patient
    from referrals.services.reconciliation import reconciliation_run
    from referrals.tests import factories as rf

    Patient.objects.filter(pk=patients.pA1.pk).update(risk_level=4)
    data = rf.csv_bytes([{"姓名": "新人", "身份证号": rf.resident_id(909)}], ["姓名", "身份证号"])
    run = reconciliation_run(by=world.users.doctor_a, partner="police", file_name="p", data=data)
    return world.users.doctor_a, reverse("referrals:reconciliation-high-risk", args=[run.pk])


CASES = {
    "followups:overdue-export": _overdue,
    "subsidies:batch-export": _batch,
    "subsidies:statement-export": _statement,
    "reports:export-indicators": _indicators,
    "reports:export-exchange": _exchange_form,
    "referrals:run-download": _package,
    "referrals:reconciliation-high-risk": _high_risk,
}


def test_every_export_route_has_a_case():
    assert set(_export_routes()) == set(CASES)


def _source(callback) -> str:
    cls = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    target = cls or inspect.unwrap(callback)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        return ""


def test_every_file_view_is_a_marked_export():
    """A view whose code answers with a file is an export (marked) or named
    in NOT_EXPORTS with why it holds no register data."""
    from django.urls import get_resolver

    unmarked = []
    for name, callback in _walk(get_resolver().url_patterns, None):
        if name.startswith("admin:") or name in NOT_EXPORTS:
            continue
        if getattr(callback, "export_what", None):
            continue
        source = _source(callback)
        if any(marker in source for marker in FILE_MARKERS):
            unmarked.append(name)
    assert unmarked == []
    assert set(NOT_EXPORTS) <= {name for name, _ in _walk(get_resolver().url_patterns, None)}


def _is_file(response) -> bool:
    return response.status_code == 200 and "attachment" in response.get("Content-Disposition", "")


def _exports():
    return AuditEvent.objects.filter(action=EXPORT_ACTION)


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_needs_the_permission_and_a_reason_and_is_audited(world, patients, name):
    user, url = CASES[name](world, patients)
    client = Client()
    af.login(client, user)

    # without the permission: refused, whatever is sent
    assert client.get(url).status_code == 403
    refused = client.post(url, {"reason": af.EXPORT_REASON})
    assert refused.status_code == 403 and not _is_file(refused)
    assert not _exports().exists()

    # with it: the reason first
    af.grant_export(user)
    form = client.get(url)
    assert form.status_code == 200 and not _is_file(form)
    assert "导出用途" in form.content.decode()
    for bad in ("", "  ab  "):
        again = client.post(url, {"reason": bad})
        assert again.status_code == 200 and not _is_file(again)
        assert str(ERR_EXPORT_REASON) in again.content.decode()
    assert not _exports().exists()

    # a reason: the file, and the export on record with it
    done = client.post(url, {"reason": "  " + af.EXPORT_REASON + " "})
    assert _is_file(done)
    event = _exports().get()
    assert event.actor_id == user.pk
    assert event.object_type == _callback(name).export_what
    assert event.detail["reason"] == af.EXPORT_REASON
    assert isinstance(event.detail["count"], int)


def test_the_admin_roles_never_export_even_with_the_permission(world, patients):
    auditor = af.grant_export(af.staff("auditor_x", Role.AUDIT_ADMIN, world.org.bureau_a))
    client = Client()
    af.login(client, auditor)
    _user, url = _overdue(world, patients)
    assert client.post(url, {"reason": af.EXPORT_REASON}).status_code in (403, 404)
    assert not _exports().exists()


def test_an_export_view_that_skips_its_audit_row_is_an_error(world):
    """The mark enforces the audit: a file answered without ``export_record``
    raises instead of leaving an unrecorded export."""

    @export_view("careless")
    def careless(request):
        export_reason(request)
        return HttpResponse(b"x", content_type="text/csv")

    doctor = af.grant_export(world.users.doctor_a)
    request = RequestFactory().post("/x/", {"reason": af.EXPORT_REASON})
    request.user = doctor
    request.session = {}
    with pytest.raises(ImproperlyConfigured):
        careless(request)


def test_the_overdue_export_keeps_its_filters_through_the_reason_form(world, patients):
    """The reason form posts back to the same URL: the filters survive."""
    from followups.tests.test_views import _overdue as make_overdue

    make_overdue(world, 2)
    doctor = af.grant_export(world.users.doctor_a)
    client = Client()
    af.login(client, doctor)
    url = reverse("followups:overdue-export") + "?days=30"
    form = client.get(url).content.decode()
    assert 'action="/followups/overdue/export/?days=30"' in form
    wb = load_workbook(BytesIO(af.export(client, url).content)).active
    assert wb.max_row == 1  # both are only a day or two overdue
    event = _exports().get()
    assert event.detail["days_min"] == "30" and event.detail["count"] == 0
    unfiltered = load_workbook(BytesIO(af.export(client, url.split("?")[0]).content)).active
    assert unfiltered.max_row == 3
