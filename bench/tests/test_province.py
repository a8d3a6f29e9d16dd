"""The province generator (``seed_province``): what it writes must be what
the application would have written — decryptable identities, follow-ups
classified by DOMAIN.md's rules, the patients' latest fields agreeing with
their follow-ups, alerts where the services would raise them, and every
index and key of the bulk tables back in place."""

from __future__ import annotations

import random
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from bench import trajectory
from bench.province import BENCH_ACCOUNTS, TABLE_ORDER, SeedError, build, table_specs

TODAY = date(2026, 11, 23)


def _schema(tables: list[str]) -> tuple[set, set]:
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)", [tables])
        indexes = {r[0] for r in cur.fetchall()}
        cur.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = ANY(%s::regclass[])", [tables]
        )
        constraints = {r[0] for r in cur.fetchall()}
    return indexes, constraints


@pytest.fixture
def province(transactional_db):
    specs = table_specs()
    tables = [specs[name].table for name in TABLE_ORDER]
    before = _schema(tables)
    counts = build(patients=400, townships=2, seed=11, jobs=2, today=TODAY)
    return {"counts": counts, "tables": tables, "schema_before": before}


@pytest.mark.postgres
def test_it_builds_the_requested_size_and_restores_every_index_and_key(province):
    from patients.models import Patient

    counts = province["counts"]
    assert Patient.objects.count() == 400 == counts["patient"]
    assert 6 * 400 <= counts["followup"] <= 11 * 400  # ≈ 8 follow-ups over two years
    assert counts["alert"] > 0 and counts["recipient"] >= counts["alert"]
    assert _schema(province["tables"]) == province["schema_before"]


@pytest.mark.postgres
def test_identities_are_encrypted_valid_and_searchable(province):
    from patients.models import Patient, id_number_index_for
    from patients.rules import parse_resident_id
    from patients.selectors import patient_search

    with connection.cursor() as cur:
        cur.execute("SELECT id_number, phone FROM patients_patient LIMIT 50")
        raw = cur.fetchall()
    assert all("$" in number and not number[-4:].isdigit() for number, _phone in raw)
    sample = list(Patient.objects.order_by("pk")[:50])
    for p in sample:
        rid = parse_resident_id(p.id_number, today=TODAY)
        assert (rid.birth_date, rid.gender) == (p.birth_date, p.gender)
        assert p.id_number_index == id_number_index_for("resident_id", p.id_number)
    target = sample[7]
    assert list(patient_search(Patient.objects.all(), target.id_number)) == [target]


@pytest.mark.postgres
def test_latest_fields_agree_with_the_follow_ups(province):
    from followups.models import FollowUp
    from patients.models import Patient

    visits: dict = {}
    for fu in FollowUp.objects.order_by("visit_date", "created_at").iterator():
        visits.setdefault(fu.patient_id, []).append(fu)
    checked = 0
    for p in Patient.objects.all():
        completed = [f for f in visits.get(p.pk, []) if f.outcome == "completed"]
        if p.status == "refused":
            assert p.pk not in visits
            continue
        if not completed:
            assert p.risk_level is None and p.last_followup_date is None
            continue
        last = completed[-1]
        assert (p.risk_level, p.classification, p.last_followup_date) == (
            last.risk_level,
            last.classification,
            last.visit_date,
        )
        if p.status in ("deceased", "moved_out", "removed"):
            assert p.next_followup_due is None
        else:
            assert p.next_followup_due == last.next_due_date
        checked += 1
    assert checked > 300


@pytest.mark.postgres
def test_statuses_match_their_last_follow_up(province):
    from followups.models import FollowUp
    from patients.models import Patient

    for p in Patient.objects.filter(status__in=["lost", "deceased"]):
        last = FollowUp.objects.filter(patient=p).order_by("-visit_date", "-created_at").first()
        if p.status == "deceased":
            assert last.outcome == "deceased" and last.death_cause
        else:
            assert last.outcome in ("lost", "not_reached") and last.lost_reason
    active = Patient.objects.filter(status="active")
    overdue = active.filter(next_followup_due__lt=TODAY).count()
    assert 0.03 * active.count() < overdue < 0.2 * active.count()


@pytest.mark.postgres
def test_alerts_are_where_the_services_would_raise_them(province):
    from accounts.models import Organisation, OrganisationKind
    from followups.models import Alert, FollowUp
    from patients.models import Patient

    risky = FollowUp.objects.filter(outcome="completed", risk_level__gte=3)
    assert risky.exists()
    for fu in risky[:20]:
        # one alert per run of high-risk visits, named by the run's first visit
        start = fu
        for earlier in FollowUp.objects.filter(
            patient=fu.patient_id, outcome="completed", visit_date__lt=fu.visit_date
        ).order_by("-visit_date", "-created_at"):
            if earlier.risk_level < 3:
                break
            start = earlier
        alert = Alert.objects.get(
            patient=fu.patient_id, kind="risk", episode=f"followup:{start.pk}"
        )
        township = fu.patient.region_id[:9]
        kinds = set(
            Organisation.objects.filter(alert_inbox__alert=alert, region_id=township).values_list(
                "kind", flat=True
            )
        )
        assert kinds == {OrganisationKind.POLICE_STATION, OrganisationKind.GOVERNANCE_OFFICE}
    for p in Patient.objects.filter(status="active", next_followup_due__lt=TODAY):
        alert = Alert.objects.get(
            patient=p, kind="overdue", episode=f"overdue:{p.next_followup_due.isoformat()}"
        )
        assert alert.status != "resolved"
    for p in Patient.objects.filter(status="lost"):
        assert Alert.objects.filter(patient=p, kind="lost").exclude(status="resolved").exists()


@pytest.mark.postgres
def test_bench_accounts_see_their_scope_through_the_selectors(province):
    from django.contrib.auth import get_user_model

    from patients.models import Patient
    from patients.selectors import patient_list_visible_to

    users = get_user_model().objects.filter(username__startswith="bench_")
    assert set(users.values_list("username", flat=True)) == {u for u, _r, _o in BENCH_ACCOUNTS}
    doctor = users.get(username="bench_doctor")
    town = doctor.staff.organisation.region
    visible = patient_list_visible_to(user=doctor)
    assert visible.count() == Patient.objects.filter(region__parent=town).count() > 0
    police = users.get(username="bench_police")
    assert patient_list_visible_to(user=police).count() == visible.count()
    official = users.get(username="bench_province")
    assert not patient_list_visible_to(user=official).exists()


@pytest.mark.postgres
def test_a_second_run_changes_nothing_and_other_sizes_are_refused(province):
    from patients.models import Patient

    assert build(patients=400, townships=2, seed=11, jobs=1, today=TODAY) == {
        "already_present": True
    }
    with pytest.raises(SeedError):
        build(patients=700, townships=2, seed=11, jobs=1, today=TODAY)
    out = StringIO()
    call_command(
        "seed_province", "--patients", "400", "--townships", "2", "--seed", "11", stdout=out
    )
    assert "nothing changed" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("seed_province", "--patients", "5", "--townships", "2", stdout=StringIO())
    assert Patient.objects.count() == 400


@pytest.mark.postgres
def test_the_command_refuses_a_database_with_other_patients(world, patients):
    with pytest.raises(CommandError):
        call_command("seed_province", "--patients", "50", "--townships", "1", stdout=StringIO())


def test_the_simulated_classification_is_domain_md_s():
    from followups import rules

    for pool in trajectory.POOL.values():
        for c in pool:
            assessment = rules.Assessment(
                risk_level=c.risk,
                insight=c.insight,
                symptoms=c.symptoms,
                social_function=c.social,
                adverse_reaction=c.adverse,
                adverse_reaction_serious=c.serious,
            )
            assert c.classification == rules.suggest_classification(assessment)


def test_the_simulated_due_dates_are_domain_md_s():
    from followups import rules

    rng = random.Random(3)
    for _ in range(2000):
        visit = date(2025, 1, 1) + timedelta(days=rng.randrange(700))
        cls = rng.choice(trajectory.POOL[rng.randrange(6)]).classification
        previous = None
        if rng.random() < 0.7:
            previous = (
                visit - timedelta(days=rng.randrange(1, 60)),
                rng.choice(rules.CLASSIFICATIONS),
            )
        expected = rules.next_due_date(
            visit,
            cls,
            previous_completed=rules.PreviousVisit(*previous) if previous else None,
        )
        assert trajectory.next_due(visit, cls, previous) == expected


def test_histories_look_like_two_years_of_quarterly_visits():
    rng = random.Random(5)
    lengths = []
    for _ in range(3000):
        sim = trajectory.simulate(
            rng,
            today=TODAY,
            registered_on=TODAY - timedelta(days=2000),
            status="active",
            overdue=False,
        )
        lengths.append(len(sim.visits))
        gaps = [
            (b.visit_date - a.visit_date).days
            for a, b in zip(sim.visits, sim.visits[1:], strict=False)
            if a.outcome == b.outcome == "completed"
        ]
        assert all(g <= 92 + 40 for g in gaps)  # never more than 3 months (plus a late visit)
    assert 7.5 <= sum(lengths) / len(lengths) <= 10


@pytest.mark.postgres
def test_referrals_awards_and_settlements_follow_their_rules(province):
    from django.db.models import Count

    from referrals.models import Referral
    from subsidies.models import Award, Episode, Settlement

    counts = province["counts"]
    assert counts["referral"] > 0 and counts["episode"] > 0
    open_per_patient = (
        Referral.objects.filter(status__in=["pending", "accepted"])
        .values("patient", "kind")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not open_per_patient.exists()
    for s in Settlement.objects.prefetch_related("lines")[:100]:
        assert sum(line.amount for line in s.lines.all()) + s.patient_pays == s.total_cost
        assert s.episode.status == "discharged" and s.discharge_date >= s.admission_date
    assert (
        not Episode.objects.filter(status="in_hospital").exclude(patient__in_hospital=True).exists()
    )
    for award in Award.objects.select_related("patient")[:50]:
        p = award.patient
        assert award.status == "active" and award.active_from <= TODAY <= award.valid_until
        assert p.police_registered
        assert (p.risk_level or 0) >= 3 or p.incidents.filter(
            kind__in=["trouble", "disaster"]
        ).exists()
        assert p.guardian.responsibility_letter and p.assistant_guardians.count() >= 2
    # the application's next ids follow the generated ones
    for model in (Award, Episode, Settlement):
        with connection.cursor() as cur:
            cur.execute(f"SELECT nextval(pg_get_serial_sequence('{model._meta.db_table}', 'id'))")
            assert cur.fetchone()[0] > max(model.objects.values_list("pk", flat=True), default=0)
