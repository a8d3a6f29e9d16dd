"""Demo data of the referrals app (API.md → demo data): referrals in every
state and kind, rehab institutions with enrolments and sessions, clues, one
exchange partner per department with one package run each, and one
reconciliation. Built through the services, as users would; a fixed number
of objects whatever ``--patients``, so the seed stays fast at scale."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Department, Organisation, OrganisationKind, Region, RegionLevel
from accounts.roles import Role
from accounts.seed import grant_demo_exports
from accounts.services import staff_create
from patients import rules as patient_rules
from patients.models import Patient, Status, id_number_index_for
from referrals import rules
from referrals.models import ClueSource, Referral, ReferralEvent, RunKind
from referrals.services import clues as clue_svc
from referrals.services import exchange as exchange_svc
from referrals.services import reconciliation as recon_svc
from referrals.services import referrals as svc
from referrals.services import rehab as rehab_svc
from referrals.tabular import write_csv


def _user(username):
    return get_user_model().objects.filter(username=username).first()


def _aware(day, hour=9):
    return timezone.make_aware(datetime.combine(day, time(hour, 0)))


def _active(township_code: str, *, exclude=(), limit=20) -> list[Patient]:
    return list(
        Patient.objects.filter(
            region__path__contains=f"/{township_code}/", status=Status.ACTIVE, in_hospital=False
        )
        .exclude(pk__in=list(exclude))
        .order_by("region_id", "name", "birth_date")[:limit]
    )


def _backdate(referral: Referral, days: int, *, today) -> None:
    """Spread the demo's referrals over the past weeks (their deadlines move
    with them, so some are overdue as in real life)."""
    created = today - timedelta(days=days)
    Referral.objects.filter(pk=referral.pk).update(
        created_at=_aware(created),
        status_changed_at=_aware(created, 15),
        accept_by=created + timedelta(days=14 if not referral.green_channel else 1),
    )
    ReferralEvent.objects.filter(referral=referral, action="created").update(at=_aware(created))


def _neighbour_county(county: Region) -> tuple[Region, Organisation]:
    """A neighbouring county of the same city with one township, one
    community and its health centre: the destination of the demo's transfer
    to another county. Populations are left unknown, so the city's figures
    stay those of the demo county (API.md)."""
    code = f"{int(county.code) + 1:06d}"
    neighbour = Region.objects.create(
        code=code, name="临河县", level=RegionLevel.COUNTY, parent=county.parent
    )
    town = Region.objects.create(
        code=f"{code}001", name="临河镇", level=RegionLevel.TOWNSHIP, parent=neighbour
    )
    village = Region.objects.create(
        code=f"{code}001001", name="临河东关社区", level=RegionLevel.VILLAGE, parent=town
    )
    centre = Organisation.objects.create(
        name="临河镇卫生院",
        department=Department.HEALTH,
        kind=OrganisationKind.HEALTH_CENTRE,
        region=town,
    )
    return village, centre


def seed(ctx) -> None:
    today = ctx.today
    county = ctx.data["county"]
    towns = ctx.data["townships"]
    orgs = ctx.data["organisations"]
    doctor1, doctor2 = _user("doctor1"), _user("doctor2")
    hospital1, civil1, dpf1 = _user("hospital1"), _user("civil1"), _user("dpf1")
    police1, police2 = _user("police1"), _user("police2")
    governance1, admin = _user("governance1"), _user("admin")
    prevention = _user("prevention1") or staff_create(
        username="prevention1",
        password=ctx.password,
        organisation=orgs[(OrganisationKind.PREVENTION_AGENCY.value, county.pk)],
        role=Role.PREVENTION_STAFF,
        display_name="陈主任",
        validate=False,
    )
    grant_demo_exports()  # the exchange packages are exports
    hc = {t.code: orgs[(OrganisationKind.HEALTH_CENTRE.value, t.code)] for t in towns}
    hospital = orgs[(OrganisationKind.SPECIALIST_HOSPITAL.value, county.pk)]
    t1, t2 = towns[0], towns[1]
    used: set = set()

    # --- community rehab -------------------------------------------------
    home = rehab_svc.rehab_institution_create(
        name=f"{t1.name}阳光家园",
        region=t1,
        places=20,
        services=["medication_training", "daily_living_training", "social_skills_training"],
        by=civil1,
        address=f"{t1.name}文化路8号",
        contact_name="刘社工",
        contact_phone="0999-1234567",
    )
    centre = rehab_svc.rehab_institution_create(
        name="县精神障碍社区康复中心",
        region=county,
        places=30,
        services=["vocational_training", "supported_employment", "home_guidance"],
        by=dpf1,
        address="县城康复路1号",
        contact_name="黄老师",
    )
    station = rehab_svc.rehab_institution_create(
        name=f"{t2.name}康复站",
        region=t2,
        places=10,
        services=["medication_training", "home_guidance"],
        by=civil1,
    )
    enrolments = []
    for institution, township, by, n in (
        (home, t1, civil1, 8),
        (centre, t2, dpf1, 6),
        (station, t2, civil1, 4),
    ):
        for patient in _active(township.code, exclude=used, limit=n):
            used.add(patient.pk)
            enrolments.append(
                rehab_svc.rehab_enrol(
                    patient_id=patient.pk,
                    institution_id=institution.pk,
                    by=by,
                    patient_consent=True,
                    guardian_consent=True,
                    started_on=today - timedelta(days=ctx.rng.randint(20, 200)),
                )
            )
    for weeks in range(6, 0, -1):
        for institution, by in ((home, civil1), (centre, dpf1)):
            active = [e for e in enrolments if e.institution_id == institution.pk]
            kind = ctx.rng.choice(institution.services)
            rehab_svc.rehab_session_record(
                institution_id=institution.pk,
                kind=kind,
                held_on=today - timedelta(weeks=weeks),
                topic={
                    "medication_training": "按时服药与药物副作用识别",
                    "daily_living_training": "做饭与整理内务",
                    "social_skills_training": "与邻居打招呼、求助",
                    "vocational_training": "手工编织",
                    "supported_employment": "社区便利店辅助岗位",
                    "home_guidance": "家属照护指导",
                }[kind],
                by=by,
                attended=[e.pk for e in active if ctx.rng.random() < 0.8],
                facilitator="康复师",
            )
    # one green-channel referral: relapse during rehab
    relapse = enrolments[0]
    green = svc.rehab_green_channel(
        enrolment_id=relapse.pk,
        to_organisation=hospital,
        reason="康复期间停药两周，出现幻听和夜间吵闹，家属要求住院。",
        by=civil1,
    )
    _backdate(green, 1, today=today)

    # --- referrals in every state -----------------------------------------
    pool1 = _active(t1.code, exclude=used, limit=20)
    pool2 = _active(t2.code, exclude=used, limit=12)
    used.update(p.pk for p in pool1 + pool2)

    def upward(patient, by, reason, days):
        ref = svc.referral_create(
            patient_id=patient.pk,
            kind="upward",
            to_organisation=hospital,
            reason=reason,
            by=by,
        )
        _backdate(ref, days, today=today)
        return ref

    upward(pool1[0], doctor1, "危险性评估3级，近一周打砸家中物品，建议住院治疗。", 3)
    upward(pool1[1], doctor1, "自行停药后症状反复，门诊调整无效。", 20)  # not accepted in time
    r = upward(pool2[0], doctor2, "出现被害妄想，拒绝进食。", 12)
    svc.referral_accept(referral_id=r.pk, by=hospital1, note="已收住入院。")
    r = upward(pool1[2], doctor1, "不稳定，需专科评估。", 40)
    svc.referral_accept(referral_id=r.pk, by=hospital1, note="门诊评估后调整用药。")
    svc.referral_complete(referral_id=r.pk, by=hospital1, note="已出院，回社区随访。")
    r = upward(pool1[3], doctor1, "家属要求住院。", 25)
    svc.referral_reject(referral_id=r.pk, by=hospital1, reason="经电话评估病情稳定，建议门诊随诊。")
    r = upward(pool2[1], doctor2, "症状加重。", 9)
    svc.referral_cancel(referral_id=r.pk, by=doctor2, reason="患者已自行到市级医院就诊。")

    def downward(patient, to_org, days_ago, effect="improved"):
        discharge = today - timedelta(days=days_ago)
        return svc.referral_create(
            patient_id=patient.pk,
            kind="downward",
            to_organisation=to_org,
            reason="经住院治疗病情稳定，转回社区继续管理和康复。",
            by=hospital1,
            discharge_sheet={
                "case_number": f"ZY{today.year}{ctx.rng.randint(1000, 9999)}",
                "admission_date": discharge - timedelta(days=ctx.rng.randint(20, 45)),
                "discharge_date": discharge,
                "discharge_diagnosis": patient.diagnosis,
                "inpatient_effect": effect,
                "medication_note": "利培酮 2mg 每晚一次；定期复查血常规。",
                "rehab_advice": "参加社区康复，服药训练和生活技能训练。",
                "attending_doctor": "张医生",
                "note": "如出现失眠、话多等复发先兆请及时复诊。",
            },
        )

    downward(pool1[4], hc[t1.code], 2)  # pending: the township doctor accepts it in the demo
    r = downward(pool1[5], hc[t1.code], 10)
    svc.referral_accept(referral_id=r.pk, by=doctor1, note="已安排村医入户。")
    r = downward(pool2[2], hc[t2.code], 30)
    svc.referral_accept(referral_id=r.pk, by=doctor2)
    svc.referral_complete(referral_id=r.pk, by=doctor2, note="出院后第7天完成首次面访。")

    r = svc.referral_create(
        patient_id=pool1[6].pk,
        kind="rehab",
        to_organisation=home.organisation,
        reason="病情稳定两年，生活自理能力下降，建议参加社区康复。",
        by=doctor1,
        patient_consent=True,
        guardian_consent=True,
    )
    svc.referral_create(
        patient_id=pool1[7].pk,
        kind="rehab",
        to_organisation=centre.organisation,
        reason="有就业意愿，建议职业能力训练。",
        by=hospital1,
        patient_consent=True,
        guardian_consent=True,
    )
    svc.referral_accept(referral_id=r.pk, by=civil1, note="已安排入组。")

    # transfers: one done (the patient now lives in township 2), one waiting
    villages2 = [v for v in ctx.data["villages"] if v.code.startswith(t2.code)]
    r = svc.referral_create(
        patient_id=pool1[8].pk,
        kind="transfer",
        to_organisation=hc[t2.code],
        reason="随子女迁居，户籍不变。",
        by=doctor1,
        to_region=villages2[0],
        to_address=f"{villages2[0].name}12号",
    )
    svc.referral_accept(referral_id=r.pk, by=doctor2, note="已建档接管。")
    svc.referral_create(
        patient_id=pool2[3].pk,
        kind="transfer",
        to_organisation=hc[t1.code],
        reason="搬至镇上居住。",
        by=doctor2,
    )
    # and one to another county: the neighbouring county's health centre has
    # not accepted yet (the demo has no account there, and the patient stays
    # on this county's register until it does)
    if len(pool1) > 9:
        far_village, far_centre = _neighbour_county(county)
        svc.referral_create(
            patient_id=pool1[9].pk,
            kind="transfer",
            to_organisation=far_centre,
            reason="随配偶迁往邻县居住，已在当地租房。",
            by=doctor1,
            to_region=far_village,
            to_address=f"{far_village.name}8号",
        )

    # --- clues ---------------------------------------------------------------
    villages1 = [v for v in ctx.data["villages"] if v.code.startswith(t1.code)]
    reports = [
        (
            police1,
            ClueSource.POLICE,
            villages1[0],
            "张某某",
            "多次在集市无故打人，家属称其夜间不睡、自言自语。",
        ),
        (
            police2,
            ClueSource.POLICE,
            villages2[-1],
            "李某",
            "邻居报警称其反复砸门，怀疑有人要害他。",
        ),
        (
            governance1,
            ClueSource.GRID_WORKER,
            villages1[-1],
            "王某某",
            "网格员走访发现长期关在家中，家属拒绝说明。",
        ),
        (civil1, ClueSource.CIVIL_AFFAIRS, villages2[0], "赵某", "救助站送返人员，言语混乱。"),
        (
            dpf1,
            ClueSource.DISABLED_FEDERATION,
            villages1[1],
            "孙某",
            "申请残疾评定时家属反映有精神异常。",
        ),
        (
            doctor1,
            ClueSource.HOTLINE,
            villages1[2 % len(villages1)],
            "周某",
            "心理援助热线转介：持续情绪低落伴被害感。",
        ),
        (
            doctor1,
            ClueSource.SCREENING,
            villages1[0],
            "吴某",
            "行为异常人员线索调查问题清单：自语自笑、无故外走。",
        ),
    ]
    clues = [
        clue_svc.clue_report(
            by=by,
            data={"source": source, "name": name, "region": village, "description": text},
        )
        for by, source, village, name, text in reports
    ]
    clue_svc.clue_close(
        clue_id=clues[5].pk, by=doctor1, reason="not_smd", note="专科复核为抑郁发作，转心理门诊。"
    )
    birth = today.replace(year=today.year - 37, day=1)
    seq = 0
    number = patient_rules.make_resident_id(county.pk, birth, seq, True)
    while Patient.objects.filter(
        id_number_index=id_number_index_for("resident_id", number)
    ).exists():
        seq += 2
        number = patient_rules.make_resident_id(county.pk, birth, seq, True)
    clue_svc.clue_confirm(
        clue_id=clues[6].pk,
        by=doctor1,
        data={
            "name": "吴某",
            "id_number": number,
            "region": villages1[0],
            "address": f"{villages1[0].name}3号",
            "diagnosis": "schizophrenia",
            "diagnosis_hospital": hospital.name,
            "diagnosis_date": today - timedelta(days=5),
            "guardian": {"name": "吴母", "relation": "母亲", "phone": "13900000000"},
        },
    )

    # --- exchange: one partner per department, one package each ---------------
    base = settings.VAR_DIR / "exchange"
    partners = [
        (
            "police",
            "县公安局（重性精神病人信息管理系统）",
            OrganisationKind.POLICE_BUREAU,
            "csv",
            True,
        ),
        ("governance", "县委政法委综治中心", OrganisationKind.GOVERNANCE_OFFICE, "xlsx", True),
        ("civil_affairs", "县民政局", OrganisationKind.CIVIL_AFFAIRS_BUREAU, "csv", False),
        ("disabled_federation", "县残联", OrganisationKind.FEDERATION, "json", False),
    ]
    for department, name, kind, fmt, immediate in partners:
        partner = exchange_svc.exchange_partner_create(
            by=admin,
            data={
                "department": department,
                "name": name,
                "organisation": orgs.get((kind.value, county.pk)),
                "format": fmt,
                "delivery": "folder",
                "folder_path": str(base / department),
                "immediate_high_risk": immediate,
            },
        )
        exchange_svc.exchange_build(
            partner=partner,
            kind=RunKind.SCHEDULED,
            period=rules.last_finished_period(today, partner.schedule),
            by=prevention,
        )

    # --- one reconciliation: the civil affairs assistance list ----------------
    sample = list(
        Patient.objects.filter(region__path__startswith=county.path, status=Status.ACTIVE).order_by(
            "region_id", "name", "birth_date"
        )[:40]
    )
    rows = [
        {
            "name": p.name,
            "id_number": p.id_number,
            "poverty": (
                "低保" if i % 9 == 0 and p.poverty == "none" else str(p.get_poverty_display())
            ),
        }
        for i, p in enumerate(sample)
    ]
    stranger = patient_rules.make_resident_id(
        county.pk, birth.replace(year=birth.year - 5), 777, False
    )
    rows.append({"name": "郑某某", "id_number": stranger, "poverty": "特困"})
    data = write_csv((("name", "姓名"), ("id_number", "身份证号"), ("poverty", "困难类别")), rows)
    recon_svc.reconciliation_run(
        by=civil1, partner="civil_affairs", file_name="民政救助对象名单.csv", data=data
    )
    ctx.log(
        f"    {Referral.objects.count()} referrals, {len(enrolments)} rehab enrolments, "
        f"{len(clues)} clues, {len(partners)} exchange partners"
    )
