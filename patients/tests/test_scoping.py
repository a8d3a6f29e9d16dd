import pytest
from django.http import Http404

from audit.models import AuditEvent
from patients.selectors import patient_get_for_user, patient_list_visible_to


@pytest.mark.django_db
def test_doctor_sees_own_township_only(world, patients):
    visible = set(patient_list_visible_to(user=world.users.doctor_a).values_list("pk", flat=True))
    assert visible == {patients.pA1.pk}


@pytest.mark.django_db
def test_county_roles_see_the_whole_county_but_not_another(world, patients):
    for user in (world.users.governance, world.users.civil, world.users.hospital):
        visible = set(patient_list_visible_to(user=user).values_list("pk", flat=True))
        assert visible == {patients.pA1.pk, patients.pB1.pk}


@pytest.mark.django_db
def test_official_and_admin_see_no_patient_rows(world, patients):
    for user in (world.users.official, world.users.admin):
        assert not patient_list_visible_to(user=user).exists()


@pytest.mark.django_db
def test_out_of_scope_detail_is_404_and_audited(world, patients):
    with pytest.raises(Http404):
        patient_get_for_user(user=world.users.police_a, pk=patients.pB1.pk)
    row = AuditEvent.objects.filter(action="access.denied").latest("id")
    assert row.actor_id == world.users.police_a.pk
    assert row.object_id == str(patients.pB1.pk)


def test_field_sets_give_no_clinical_field_outside_health():
    from patients.fieldsets import CLINICAL, FIELDSETS, LATEST_RISK

    for department, fields in FIELDSETS.items():
        if department != "health":
            assert not set(CLINICAL) & set(fields), department
        assert len(set(fields)) == len(fields), department
    # DOMAIN.md → Data exchange: police and governance get the risk level and
    # the classification; the due date with them (documented in fieldsets.py)
    for department in ("police", "governance"):
        assert set(LATEST_RISK) <= set(FIELDSETS[department])
        assert (
            "classification" in FIELDSETS[department] and "diagnosis" not in FIELDSETS[department]
        )
