"""Separation of duties (三员, SECURITY.md G4): one role per account, and the
system, security and audit admins read no patient record."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404

from accounts.roles import ROLE_INFO, Role, role_of
from accounts.services import (
    ERR_NOT_ALLOWED,
    ERR_ONE_ROLE,
    role_group,
    staff_create,
    staff_role_add,
)
from accounts.tests import factories as af
from core.errors import DomainError
from patients.selectors import patient_get_for_user, patient_list_visible_to

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def three(world):
    return {
        Role.ADMIN: world.users.admin,
        Role.SECURITY_ADMIN: af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a),
        Role.AUDIT_ADMIN: af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a),
    }


def test_none_of_the_three_admins_reads_a_patient(three, patients):
    for user in three.values():
        assert not patient_list_visible_to(user=user).exists()
        for patient in (patients.pA1, patients.pB1, patients.pC1):
            with pytest.raises(Http404):
                patient_get_for_user(user=user, pk=patient.pk)


def test_a_second_role_is_refused_by_the_service(three):
    for role, user in three.items():
        other = Role.AUDIT_ADMIN if role != Role.AUDIT_ADMIN else Role.SECURITY_ADMIN
        with pytest.raises(DomainError) as exc:
            staff_role_add(user=user, role=other, by=None)
        assert exc.value.message == ERR_ONE_ROLE
        user.__dict__.pop("_role_cache", None)
        assert role_of(user) == role


def test_a_second_role_group_is_refused_whoever_adds_it(three):
    admin = three[Role.ADMIN]
    audit_group, sec_group = role_group(Role.AUDIT_ADMIN), role_group(Role.SECURITY_ADMIN)
    for attempt in (
        lambda: admin.groups.add(audit_group),
        lambda: sec_group.user_set.add(admin),
        lambda: admin.groups.add(audit_group, sec_group),
    ):
        with pytest.raises(DomainError), transaction.atomic():
            attempt()
    assert [g.name for g in admin.groups.filter(name__in=list(ROLE_INFO))] == [Role.ADMIN]


def test_a_second_scope_group_is_refused(world):
    doctor = world.users.doctor_a
    other_scope = Group.objects.get(name__startswith=f"scope:{world.org.hc_a2.pk}:")
    with pytest.raises(DomainError), transaction.atomic():
        doctor.groups.add(other_scope)


def test_an_account_without_a_role_can_be_given_one(world):
    user = world.users.civil
    user.groups.clear()
    user.__dict__.pop("_role_cache", None)
    staff_role_add(user=user, role=Role.CIVIL_AFFAIRS, by=world.users.admin)
    user.__dict__.pop("_role_cache", None)
    assert role_of(user) == Role.CIVIL_AFFAIRS


def test_no_account_holds_two_roles(three):
    doubled = (
        get_user_model()
        .objects.annotate(roles=Count("groups", filter=Q(groups__name__in=list(ROLE_INFO))))
        .filter(roles__gt=1)
    )
    assert not doubled.exists()


def test_each_admin_does_only_their_own_job(three, world):
    sec, audit = three[Role.SECURITY_ADMIN], three[Role.AUDIT_ADMIN]
    for user in (sec, audit):
        with pytest.raises(DomainError) as exc:
            staff_create(
                username="sneaky",
                password=af.PASSWORD,
                organisation=world.org.hc_a1,
                role=Role.TOWNSHIP_DOCTOR,
                by=user,
                validate=False,
            )
        assert exc.value.message == ERR_NOT_ALLOWED


def test_django_admin_user_form_refuses_two_roles(three):
    from accounts.admin import OneRoleUserChangeForm

    admin = three[Role.ADMIN]
    data = {
        "username": admin.username,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "groups": [role_group(Role.ADMIN).pk, role_group(Role.AUDIT_ADMIN).pk],
    }
    form = OneRoleUserChangeForm(data, instance=admin)
    assert not form.is_valid()
    assert str(ERR_ONE_ROLE) in form.errors["groups"]
