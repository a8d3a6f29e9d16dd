"""Export is a permission of its own, needs a reason and is audited (G14)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.test import RequestFactory

from accounts.exports import (
    ERR_EXPORT_REASON,
    ExportReasonMixin,
    clean_reason,
    export_allowed,
    export_requires_reason,
)
from accounts.roles import Role
from accounts.services import staff_set_export
from accounts.tests import factories as af
from audit.models import AuditEvent
from audit.services import export_record

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@export_requires_reason("patients")
def fake_export(request, reason):
    export_record(user=request.user, what="patients", reason=reason, count=3, request=request)
    return HttpResponse("csv", content_type="text/csv")


def call(user, method="get", data=None):
    factory = RequestFactory()
    request = getattr(factory, method)("/patients/export/?region=990102", data or {})
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return fake_export(request)


def fresh(user):
    return get_user_model().objects.get(pk=user.pk)


def test_nobody_exports_until_granted(world):
    doctor = world.users.doctor_a
    assert not export_allowed(doctor)
    with pytest.raises(PermissionDenied):
        call(doctor)
    staff_set_export(user=doctor, allowed=True, by=world.users.admin)
    assert export_allowed(fresh(doctor))


def test_admin_roles_never_export_even_with_the_permission(world):
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    staff_set_export(user=sec, allowed=True, by=world.users.admin)
    assert not export_allowed(fresh(sec))


def test_export_asks_for_a_reason_then_records_it(world):
    doctor = world.users.doctor_a
    staff_set_export(user=doctor, allowed=True, by=world.users.admin)
    doctor = fresh(doctor)
    form_page = call(doctor)
    assert form_page.status_code == 200 and "导出用途" in form_page.content.decode()
    refused = call(doctor, "post", {"reason": "x"})
    assert str(ERR_EXPORT_REASON) in refused.content.decode()
    assert not AuditEvent.objects.filter(action="data.export").exists()
    done = call(doctor, "post", {"reason": "季度报表上报"})
    assert done["Content-Type"] == "text/csv"
    event = AuditEvent.objects.get(action="data.export")
    assert event.actor == doctor and event.object_type == "patients"
    assert event.detail == {"reason": "季度报表上报", "count": 3}


def test_reason_helpers_for_forms_and_api():
    with pytest.raises(ValidationError):
        clean_reason("  ab ")
    assert clean_reason(" 年度核查 ") == "年度核查"

    class FilterForm(ExportReasonMixin):
        pass

    form = FilterForm({"reason": ""})
    assert not form.is_valid() and "reason" in form.errors
