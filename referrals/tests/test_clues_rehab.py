"""Clue reporting rules and rehab service details."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from core.errors import DomainError
from patients.rules import ERR_CHECKSUM
from referrals.models import Clue, RehabAttendance
from referrals.services import clues as svc
from referrals.services import rehab as rehab_svc
from referrals.tests import factories as rf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_each_department_reports_its_own_source(world):
    clue = svc.clue_report(by=world.users.governance, data={"name": "某", "region": world.a2})
    assert clue.source == "grid_worker"
    assert clue.assigned_organisation == world.org.hc_a2
    with pytest.raises(DomainError) as err:
        svc.clue_report(
            by=world.users.police_a, data={"name": "某", "region": world.a1, "source": "hotline"}
        )
    assert err.value.field == "source"
    health = svc.clue_report(
        by=world.users.doctor_a, data={"name": "某", "region": world.a1, "source": "family"}
    )
    assert health.source == "family"


def test_clues_stay_inside_the_reporters_area(world):
    with pytest.raises(DomainError) as err:
        svc.clue_report(by=world.users.police_a, data={"name": "某", "region": world.a2})
    assert err.value.message == svc.ERR_REGION_SCOPE
    with pytest.raises(DomainError):
        svc.clue_report(by=world.users.governance, data={"name": "某", "region": world.county_a})
    with pytest.raises(PermissionDenied):
        svc.clue_report(by=world.users.finance, data={"name": "某", "region": world.a1})


def test_an_invalid_id_number_names_the_field(world):
    with pytest.raises(DomainError) as err:
        svc.clue_report(
            by=world.users.police_a,
            data={"name": "某", "region": world.a1, "id_number": "990102198005170010"},
        )
    assert err.value.field == "id_number" and err.value.message == ERR_CHECKSUM


def test_id_numbers_of_clues_are_stored_encrypted_with_a_blind_index(world):
    from django.db import connection

    number = rf.resident_id(55)
    clue = svc.clue_report(
        by=world.users.police_a, data={"name": "某", "region": world.a1, "id_number": number}
    )
    with connection.cursor() as cur:
        cur.execute("SELECT id_number FROM referrals_clue WHERE id = %s", [clue.pk])
        assert number not in cur.fetchone()[0]
    assert Clue.objects.get().id_number == number and len(clue.id_number_index) == 64


def test_only_health_reviews_and_a_closed_clue_stays_closed(world):
    clue = svc.clue_report(by=world.users.police_a, data={"name": "某", "region": world.a1})
    with pytest.raises(PermissionDenied):
        svc.clue_close(clue_id=clue.pk, by=world.users.police_a, reason="not_found")
    svc.clue_close(
        clue_id=clue.pk, by=world.users.doctor_a, reason="not_found", note="走访三次未见"
    )
    with pytest.raises(DomainError):
        svc.clue_close(clue_id=clue.pk, by=world.users.doctor_a, reason="not_smd")


def test_confirming_a_clue_of_a_registered_person_is_refused(world, patients):
    from patients.services import ERR_DUPLICATE

    clue = svc.clue_report(by=world.users.police_a, data={"name": "甲一", "region": world.a1})
    with pytest.raises(DomainError) as err:
        svc.clue_confirm(
            clue_id=clue.pk,
            by=world.users.doctor_a,
            data={
                "name": "甲一",
                "id_number": patients.pA1.id_number,
                "region": patients.pA1.region,
                "address": "x",
                "diagnosis": "schizophrenia",
            },
        )
    assert err.value.message == ERR_DUPLICATE
    clue.refresh_from_db()
    assert clue.status == "open"


def test_session_attendance_covers_every_enrolled_patient(world, patients):
    from django.utils import timezone

    institution = rf.rehab_institution(by=world.users.civil, region=world.county_a)
    enrolled = [
        rehab_svc.rehab_enrol(
            patient_id=p.pk,
            institution_id=institution.pk,
            by=world.users.civil,
            patient_consent=True,
            guardian_consent=True,
        )
        for p in (patients.pA1, patients.pB1)
    ]
    rehab_svc.rehab_session_record(
        institution_id=institution.pk,
        kind="social_skills_training",
        held_on=timezone.localdate(),
        topic="角色扮演：去银行办事",
        by=world.users.civil,
        attended=[enrolled[0].pk],
    )
    marks = dict(RehabAttendance.objects.values_list("enrolment__patient__name", "attended"))
    assert marks == {"甲一": True, "乙一": False}
    with pytest.raises(PermissionDenied):  # the federation does not run this institution
        rehab_svc.rehab_session_record(
            institution_id=institution.pk,
            kind="social_skills_training",
            held_on=timezone.localdate(),
            topic="x",
            by=world.users.dpf,
            attended=[],
        )


def test_a_patient_is_in_one_rehab_programme_at_a_time(world, patients):
    first = rf.rehab_institution(by=world.users.civil, region=world.county_a, name="一")
    second = rf.rehab_institution(by=world.users.civil, region=world.county_a, name="二")
    kwargs = {
        "patient_id": patients.pA1.pk,
        "by": world.users.civil,
        "patient_consent": True,
        "guardian_consent": True,
    }
    rehab_svc.rehab_enrol(institution_id=first.pk, **kwargs)
    with pytest.raises(DomainError) as err:
        rehab_svc.rehab_enrol(institution_id=second.pk, **kwargs)
    assert err.value.message == rehab_svc.ERR_ALREADY_ENROLLED


def test_institutions_are_registered_in_the_users_own_area(world):
    with pytest.raises(DomainError) as err:
        rf.rehab_institution(by=world.users.civil, region=world.c1)
    assert err.value.field == "region"
    with pytest.raises(PermissionDenied):
        rf.rehab_institution(by=world.users.doctor_a, region=world.a1)
