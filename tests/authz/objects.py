"""The objects the matrix's route kwargs point at, one per data position.

Positions are fixed relative to township A1 (the *_a personas' own
township): OWN is in township A1 (990102001), OTHER in township A2
(990102002) of the same county, COUNTY in county C (990103). Every object is
built through its app's services or test factories, as the app's users would
build it; a builder that fails names its kind in the error.

Each builder returns ``{position: Obj}`` where ``Obj.key`` is the URL kwarg
value and ``Obj.markers`` are strings whose presence in a list response means
"this object is shown" (patient names, which are unique in this world).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.utils import timezone

OWN, OTHER, COUNTY = "own", "other", "county"
POSITIONS = (OWN, OTHER, COUNTY)


@dataclass
class Obj:
    key: object  # URL kwarg value
    markers: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


BUILDERS: dict[str, Callable] = {}


def builder(kind: str):
    def register(fn):
        BUILDERS[kind] = fn
        return fn

    return register


class Objects:
    """Lazily built objects of every kind, per test (they live in the test's
    transaction)."""

    def __init__(self, ctx: SimpleNamespace):
        self.ctx = ctx
        self._built: dict[str, dict[str, Obj]] = {}

    def get(self, kind: str) -> dict[str, Obj]:
        if kind not in self._built:
            try:
                self._built[kind] = BUILDERS[kind](self.ctx, self)
            except Exception as exc:
                raise RuntimeError(f"authz objects: building {kind!r} failed: {exc!r}") from exc
        return self._built[kind]


def _names(p) -> tuple[str, ...]:
    """A patient-bound object is shown when its patient's name or id is."""
    return (p.name, str(p.pk))


@builder("patient")
def _patients(ctx, objs):
    p = ctx.patients
    return {
        OWN: Obj(p.pA1.pk, _names(p.pA1)),
        OTHER: Obj(p.pB1.pk, _names(p.pB1)),
        COUNTY: Obj(p.pC1.pk, _names(p.pC1)),
    }


@builder("staff")
def _staff(ctx, objs):
    u = ctx.users
    return {
        OWN: Obj(u.doctor_a.pk, ("doctor_a",)),
        OTHER: Obj(u.doctor_b.pk, ("doctor_b",)),
        COUNTY: Obj(u.doctor_c.pk, ("doctor_c",)),
    }


@builder("region")
def _regions(ctx, objs):
    w = ctx.world
    return {OWN: Obj(w.a1.code), OTHER: Obj(w.a2.code), COUNTY: Obj(w.c1.code)}


@builder("organisation")
def _organisations(ctx, objs):
    o = ctx.world.org
    return {OWN: Obj(o.hc_a1.pk), OTHER: Obj(o.hc_a2.pk), COUNTY: Obj(o.hc_c1.pk)}


@builder("care_member")
def _care_members(ctx, objs):
    from patients.services import care_team_add

    u, p = ctx.users, ctx.patients
    out = {}
    for pos, patient, doctor in (
        (OWN, p.pA1, u.doctor_a),
        (OTHER, p.pB1, u.doctor_b),
        (COUNTY, p.pC1, u.doctor_c),
    ):
        member = care_team_add(
            patient_id=patient.pk, by=doctor, role="village_doctor", name="矩阵乡医"
        )
        out[pos] = Obj(member.pk, _names(patient), {"patient": patient.pk})
    return out


@builder("followup")
def _followups(ctx, objs):
    from followups.tests.factories import record

    u, p = ctx.users, ctx.patients
    out = {}
    for pos, patient, doctor in (
        (OWN, p.pA1, u.doctor_a),
        (OTHER, p.pB1, u.doctor_b),
        (COUNTY, p.pC1, u.doctor_c),
    ):
        fu = record(by=doctor, patient=patient, days_ago=1)
        out[pos] = Obj(fu.pk, (*_names(patient), str(fu.pk)))
    return out


@builder("alert")
def _alerts(ctx, objs):
    """A risk alert per patient (a follow-up with risk 3 raises it to the
    police station and governance office of the patient's township)."""
    from followups.models import Alert
    from followups.tests.factories import record

    u, p = ctx.users, ctx.patients
    out = {}
    for pos, patient, doctor in (
        (OWN, p.pA1, u.doctor_a),
        (OTHER, p.pB1, u.doctor_b),
        (COUNTY, p.pC1, u.doctor_c),
    ):
        record(by=doctor, patient=patient, days_ago=0, risk_level=3)
        alert = Alert.objects.filter(patient=patient, kind="risk").order_by("-raised_at").first()
        if alert is None:
            raise RuntimeError(f"no risk alert raised for {pos}")
        out[pos] = Obj(alert.pk, (*_names(patient), str(alert.pk)))
    return out


@builder("apikey")
def _api_keys(ctx, objs):
    """Requested keys (approvable, revocable) of each position's health
    centre, custodian its township doctor."""
    from accounts.services import apikey_request

    o, u = ctx.world.org, ctx.users
    out = {}
    for pos, org, by, custodian in (
        (OWN, o.hc_a1, u.security_admin, u.doctor_a),
        (OTHER, o.hc_a2, u.security_admin, u.doctor_b),
        (COUNTY, o.hc_c1, ctx.extra.security_admin_c, u.doctor_c),
    ):
        key = apikey_request(
            name=f"矩阵接口{pos}",
            organisation=org,
            role="township_doctor",
            custodian=custodian,
            by=by,
        )
        out[pos] = Obj(key.pk, (key.prefix,))
    return out


@builder("account_request")
def _account_requests(ctx, objs):
    """Pending requests for a new township doctor at each position's health
    centre, asked by the system admin of that county."""
    from accounts.roles import Role
    from accounts.services import account_request_create
    from accounts.tests import factories as af

    o, u = ctx.world.org, ctx.users
    admin_c = af.staff("admin_c", Role.ADMIN, ctx.extra.security_admin_c.staff.organisation)
    out = {}
    for pos, org, by in (
        (OWN, o.hc_a1, u.admin),
        (OTHER, o.hc_a2, u.admin),
        (COUNTY, o.hc_c1, admin_c),
    ):
        req, _half = account_request_create(
            username=f"matrix_new_{pos}", organisation=org, role=Role.TOWNSHIP_DOCTOR, by=by
        )
        out[pos] = Obj(req.pk, (req.username,))
    return out


@builder("apikey_approved")
def _api_keys_approved(ctx, objs):
    """The same keys approved: each waits for its custodian (doctor_a at
    OWN, doctor_b at OTHER, doctor_c at COUNTY) to collect it."""
    from accounts.models import ApiKey
    from accounts.services import apikey_approve

    out = {}
    for pos, obj in objs.get("apikey").items():
        apikey_approve(api_key=ApiKey.objects.get(pk=obj.key), by=None)
        out[pos] = obj
    return out


@builder("breakglass")
def _breakglass(ctx, objs):
    """Grants to patients outside the requester's scope, inside the
    requester's county (break-the-glass searches only there): doctor_b opens
    pA1 (own township's patient), doctor_a opens pB1, and a doctor of a
    second township of county C opens pC1."""
    from accounts.models import OrganisationKind, RegionLevel
    from accounts.roles import Role
    from accounts.services import breakglass_request
    from accounts.tests import factories as af

    u, p, w = ctx.users, ctx.patients, ctx.world
    c2 = af.region("990103002", "镇C2", RegionLevel.TOWNSHIP, w.county_c)
    doctor_c2 = af.staff(
        "doctor_c2",
        Role.TOWNSHIP_DOCTOR,
        af.organisation("C2卫生院", OrganisationKind.HEALTH_CENTRE, c2),
    )
    out = {}
    for pos, patient, by in (
        (OWN, p.pA1, u.doctor_b),
        (OTHER, p.pB1, u.doctor_a),
        (COUNTY, p.pC1, doctor_c2),
    ):
        grant = breakglass_request(
            by=by,
            id_type=patient.id_type,
            id_number=patient.id_number,
            reason="矩阵测试：急诊需要查看既往病史",
        )
        out[pos] = Obj(grant.pk, _names(patient))
    return out


def _subsidy_setup(ctx, objs):
    """Policies in both counties and each patient made eligible."""
    if "subsidy_setup" in objs._built:
        return objs._built["subsidy_setup"]
    from subsidies.tests import factories as sf

    w, u, p, x = ctx.world, ctx.users, ctx.patients, ctx.extra
    sf.reward_policy(w.county_a)
    sf.reward_policy(w.county_c)
    sf.settlement_policy(w.county_a)
    sf.settlement_policy(w.county_c)
    eligible = {
        OWN: sf.make_eligible(p.pA1, doctor=u.doctor_a, police=u.police_a),
        OTHER: sf.make_eligible(p.pB1, doctor=u.doctor_b, police=u.police_b),
        COUNTY: sf.make_eligible(p.pC1, doctor=u.doctor_c, police=x.police_c),
    }
    objs._built["subsidy_setup"] = eligible
    return eligible


@builder("award")
def _awards(ctx, objs):
    from subsidies.tests import factories as sf

    u, x = ctx.users, ctx.extra
    eligible = _subsidy_setup(ctx, objs)
    today = timezone.localdate()
    out = {}
    for pos, applicant in ((OWN, u.doctor_a), (OTHER, u.doctor_b), (COUNTY, u.doctor_c)):
        award = sf.award_through(eligible[pos], applicant=applicant, applied=today)
        out[pos] = Obj(award.pk, _names(eligible[pos]))
    del x
    return out


@builder("episode")
def _episodes(ctx, objs):
    from subsidies import services

    # after the settlements' stays (an admission may not precede the last discharge)
    objs.get("settlement")
    p, u, x = ctx.patients, ctx.users, ctx.extra
    admitted = timezone.localdate() - timedelta(days=1)
    out = {}
    for pos, patient, hospital in (
        (OWN, p.pA1, u.hospital),
        (OTHER, p.pB1, u.hospital),
        (COUNTY, p.pC1, x.hospital_c),
    ):
        episode = services.episode_admit(
            patient_id=patient.pk,
            by=hospital,
            case_number=f"ZY-MATRIX-{pos}",
            admission_date=admitted,
        )
        out[pos] = Obj(episode.pk, _names(patient))
    return out


@builder("settlement")
def _settlements(ctx, objs):
    from subsidies import services

    _subsidy_setup(ctx, objs)
    p, u, x = ctx.patients, ctx.users, ctx.extra
    today = timezone.localdate()
    out = {}
    for pos, patient, hospital in (
        (OWN, p.pA1, u.hospital),
        (OTHER, p.pB1, u.hospital),
        (COUNTY, p.pC1, x.hospital_c),
    ):
        settlement = services.settlement_record(
            patient_id=patient.pk,
            by=hospital,
            admission_date=today - timedelta(days=30),
            discharge_date=today - timedelta(days=2),
            total_cost=Decimal("10000.00"),
            in_scope_cost=Decimal("8000.00"),
        )
        markers = (*_names(patient), settlement.number, settlement.episode.case_number)
        out[pos] = Obj(settlement.pk, markers)
    return out


@builder("batch")
def _batches(ctx, objs):
    """Payment batches of county A (OWN and OTHER share it: a batch is
    per county) and county C, for the last finished quarter."""
    from subsidies import services
    from subsidies.rules import parse_period

    _subsidy_setup(ctx, objs)
    w = ctx.world
    today = timezone.localdate()
    quarter = (today.month - 1) // 3 + 1
    year, quarter = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)
    code = f"{year}Q{quarter}"
    parse_period(code)
    batch_a, _ = services.batch_draw(region=w.county_a, period_code=code, today=today)
    batch_c, _ = services.batch_draw(region=w.county_c, period_code=code, today=today)
    return {OWN: Obj(batch_a.pk), OTHER: Obj(batch_a.pk), COUNTY: Obj(batch_c.pk)}


def today() -> date:
    return timezone.localdate()


# Objects this matrix does not build (yet): one id that exists nowhere, the
# same at every position. Such a route is checked for its role gate (403
# before any lookup) and for 404 on a missing object, not for scope.
MISSING_UUID = "00000000-0000-4000-8000-00000000beef"
MISSING_INT = 987654321


@builder("missing_uuid")
def _missing_uuid(ctx, objs):
    return dict.fromkeys(POSITIONS, Obj(MISSING_UUID))


@builder("missing_int")
def _missing_int(ctx, objs):
    return dict.fromkeys(POSITIONS, Obj(MISSING_INT))


@builder("referral")
def _referrals(ctx, objs):
    """Upward referrals: each township doctor to the county's hospital."""
    from referrals.services.referrals import referral_create

    u, p, o = ctx.users, ctx.patients, ctx.world.org
    hospital_c = ctx.extra.hospital_c.staff.organisation
    out = {}
    for pos, patient, doctor, hospital in (
        (OWN, p.pA1, u.doctor_a, o.hospital_a),
        (OTHER, p.pB1, u.doctor_b, o.hospital_a),
        (COUNTY, p.pC1, u.doctor_c, hospital_c),
    ):
        referral = referral_create(
            patient_id=patient.pk,
            kind="upward",
            to_organisation=hospital,
            reason="矩阵：病情不稳定，建议住院",
            by=doctor,
        )
        out[pos] = Obj(referral.pk, (*_names(patient), str(referral.pk)))
    return out


@builder("exchange_run")
def _exchange_runs(ctx, objs):
    """Scheduled packages of the last finished quarter: county A's police
    package (received by the county police bureau), county A's governance
    package (received by the county governance office) and county C's
    police package."""
    from accounts.models import OrganisationKind as K
    from accounts.roles import Role
    from accounts.tests import factories as af
    from referrals import rules
    from referrals.services.exchange import exchange_build, exchange_partner_create

    w = ctx.world
    prevention_a = af.staff("matrix_prevention_a", Role.PREVENTION_STAFF, w.org.prevention_a)
    prevention_c = af.staff(
        "matrix_prevention_c",
        Role.PREVENTION_STAFF,
        af.organisation("C精防中心", K.PREVENTION_AGENCY, w.county_c),
    )
    bureau_c = af.organisation("C公安局", K.POLICE_BUREAU, w.county_c)
    period = rules.last_finished_period(today(), "quarterly")
    out = {}
    for pos, by, department, organisation in (
        (OWN, prevention_a, "police", w.org.pb_a),
        (OTHER, prevention_a, "governance", w.org.gov_a),
        (COUNTY, prevention_c, "police", bureau_c),
    ):
        partner = exchange_partner_create(
            by=by,
            data={
                "department": department,
                "name": f"矩阵{department}",
                "organisation": organisation,
                "format": "csv",
                "delivery": "folder",
                "folder_path": "/tmp/matrix-exchange",
            },
        )
        run = exchange_build(partner=partner, kind="scheduled", period=period)
        out[pos] = Obj(run.pk, (str(run.pk),))
    return out
