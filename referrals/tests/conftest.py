from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from accounts.models import OrganisationKind as K
from accounts.roles import Role
from accounts.tests import factories as af


@pytest.fixture
def more(world):
    """A prevention-agency account (county A) and the county police bureau's
    and civil affairs' receiving organisations used by exchange tests."""
    prevention = af.staff("prevention_a", Role.PREVENTION_STAFF, world.org.prevention_a)
    return SimpleNamespace(prevention=prevention, bureau=world.org.pb_a)


@pytest.fixture
def institution(world):
    from referrals.tests import factories as rf

    return rf.rehab_institution(by=world.users.civil, region=world.county_a, places=2)


@pytest.fixture
def hc_c1_village(world):
    from accounts.models import Region

    return Region.objects.get(code="990103001002")


@pytest.fixture
def kinds():
    return K


@pytest.fixture
def scene(world, patients, more, tmp_path):
    """One object of each kind in township A1 ("own"), township A2 ("other
    township") and county C ("other county")."""
    from accounts.models import OrganisationKind as K
    from referrals.rules import Period
    from referrals.services import clues as clue_svc
    from referrals.services import exchange as ex_svc
    from referrals.services import reconciliation as recon_svc
    from referrals.services import referrals as ref_svc
    from referrals.tests import factories as rf

    u, o = world.users, world.org
    hospital_c = af.organisation("C专科医院", K.SPECIALIST_HOSPITAL, world.county_c)
    civil_c_org = af.organisation("C民政局", K.CIVIL_AFFAIRS_BUREAU, world.county_c)
    prevention_c_org = af.organisation("C精防中心", K.PREVENTION_AGENCY, world.county_c)
    civil_c = af.staff("civil_c", Role.CIVIL_AFFAIRS, civil_c_org)
    prevention_c = af.staff("prevention_c", Role.PREVENTION_STAFF, prevention_c_org)

    def upward(by, patient, to):
        return ref_svc.referral_create(
            patient_id=patient.pk, kind="upward", to_organisation=to, reason="不稳定", by=by
        )

    referral = SimpleNamespace(
        own=upward(u.doctor_a, patients.pA1, o.hospital_a),
        other_township=upward(u.doctor_b, patients.pB1, o.hospital_a),
        other_county=upward(u.doctor_c, patients.pC1, hospital_c),
    )
    institution = SimpleNamespace(
        own=rf.rehab_institution(by=u.civil, region=world.a1, name="A1阳光家园"),
        other_township=rf.rehab_institution(by=u.civil, region=world.a2, name="A2阳光家园"),
        other_county=rf.rehab_institution(by=civil_c, region=world.c1, name="C1阳光家园"),
    )

    def clue(by, village):
        from accounts.models import Region

        return clue_svc.clue_report(
            by=by,
            data={
                "name": "疑似者",
                "region": Region.objects.get(code=village),
                "description": "自语自笑",
            },
        )

    clues = SimpleNamespace(
        own=clue(u.police_a, "990102001001"),
        other_township=clue(u.police_b, "990102002001"),
        other_county=clue(u.doctor_c, "990103001001"),
    )
    partner_a = rf.partner(
        by=more.prevention, department="police", folder=str(tmp_path / "a"), organisation=o.pb_a
    )
    partner_c = rf.partner(by=prevention_c, department="police", folder=str(tmp_path / "c"))
    q3 = Period("2026Q3", date(2026, 7, 1), date(2026, 9, 30))
    runs = SimpleNamespace(
        own=ex_svc.exchange_build(partner=partner_a, kind="scheduled", period=q3),
        other_county=ex_svc.exchange_build(partner=partner_c, kind="scheduled", period=q3),
    )
    police_csv = rf.csv_bytes(
        [
            {"姓名": "甲一", "身份证号": patients.pA1.id_number},
            # pB1 under a wrong number: name, birth date, gender and township agree
            {
                "姓名": "乙一",
                "身份证号": "990102198005179999",
                "性别": "男",
                "出生日期": patients.pB1.birth_date.isoformat(),
                "现住址区划代码": "990102002001",
            },
        ],
        ["姓名", "身份证号", "性别", "出生日期", "现住址区划代码"],
    )
    reconciliation = SimpleNamespace(
        own=recon_svc.reconciliation_run(
            by=u.governance, partner="police", file_name="a.csv", data=police_csv
        ),
        other_county=recon_svc.reconciliation_run(
            by=u.doctor_c,
            partner="police",
            file_name="c.csv",
            data=rf.csv_bytes(
                [{"姓名": "丙一", "身份证号": patients.pC1.id_number}], ["姓名", "身份证号"]
            ),
        ),
    )
    civil_csv = rf.csv_bytes(
        [{"姓名": "甲一", "身份证号": patients.pA1.id_number, "困难类别": "低保"}],
        ["姓名", "身份证号", "困难类别"],
    )
    recon_svc.reconciliation_run(
        by=u.civil, partner="civil_affairs", file_name="m.csv", data=civil_csv
    )
    from referrals.models import EntitlementTask, ItemOutcome
    from referrals.services import imports as import_svc
    from referrals.services import rehab as rehab_svc

    review_item = reconciliation.own.items.get(outcome=ItemOutcome.REVIEW)
    task = EntitlementTask.objects.get(patient=patients.pA1, kind="poverty")
    enrolment = rehab_svc.rehab_enrol(
        patient_id=patients.pA1.pk,
        institution_id=institution.own.pk,
        by=u.civil,
        patient_consent=True,
        guardian_consent=True,
    )
    imports = SimpleNamespace(
        own=import_svc.roster_import_start(by=u.doctor_a, file_name="a.xlsx", data=b"a"),
        other_township=import_svc.roster_import_start(by=u.doctor_b, file_name="b.xlsx", data=b"b"),
        other_county=import_svc.roster_import_start(by=u.doctor_c, file_name="c.xlsx", data=b"c"),
    )
    return SimpleNamespace(
        review_item=review_item,
        task=task,
        enrolment=enrolment,
        imports=imports,
        referral=referral,
        institution=institution,
        clue=clues,
        partner=SimpleNamespace(own=partner_a, other_county=partner_c),
        run=runs,
        reconciliation=reconciliation,
        users=SimpleNamespace(civil_c=civil_c, prevention_c=prevention_c),
        hospital_c=hospital_c,
    )
