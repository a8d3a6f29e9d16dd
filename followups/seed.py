"""Demo follow-up history (API.md → demo data): two years of visits in a
quarterly rhythm, risk episodes, some overdue, some lost, some incidents,
open and handled alerts.

Each patient's history is simulated with the real rules (``followups.rules``:
classification, next due dates, three misses → lost), so the data obeys what
the pages and the scan expect. Everything is written with COPY and
server-side ``INSERT … SELECT`` (no per-row save): ``--patients 50000``
stays within the seed's time budget.
"""

from __future__ import annotations

import json
import time as _time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import OrganisationKind
from core import notify
from core.bulk import bulk_load
from followups import rules
from followups.models import Alert, AlertRecipient, FollowUp, NotificationDelivery
from followups.services.alerts import lost_episode, overdue_episode
from patients import rules as patient_rules
from patients.models import Incident, Patient

YEARS_BACK = 2
DRUGS = [
    ("利培酮", {"morning_mg": "1", "evening_mg": "2"}),
    ("奥氮平", {"evening_mg": "10"}),
    ("阿立哌唑", {"morning_mg": "10"}),
    ("喹硫平", {"morning_mg": "100", "evening_mg": "200"}),
    ("氯氮平", {"morning_mg": "50", "evening_mg": "100"}),
    ("帕利哌酮", {"morning_mg": "6"}),
    ("丙戊酸钠", {"morning_mg": "500", "evening_mg": "500"}),
    ("碳酸锂", {"morning_mg": "250", "noon_mg": "250", "evening_mg": "250"}),
]
INJECTION = ("棕榈酸帕利哌酮注射液", {"injection_interval_weeks": 4, "injection_mg": "150"})
RISK_NOTES = [
    "已上门走访，患者在家，监护人看护到位。",
    "已电话联系监护人，落实看管措施。",
    "已会同网格员走访，情况稳定。",
    "已协助家属送专科医院诊治。",
]
INCIDENT_TEXT = {
    "minor_trouble": ("村委会门口", "与邻居争吵，推搡", "民警到场劝解，通知监护人接回"),
    "trouble": ("集市", "砸坏摊位物品", "民警处置，联系卫生院随访，家属赔偿"),
    "disaster": ("住所", "持械伤人", "依法处置，送专科医院住院治疗"),
}
OVERDUE_NOTE = "已完成随访（%s）。"


@dataclass
class Out:
    """Rows collected for COPY."""

    followups: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    recipients: list = field(default_factory=list)
    incidents: list = field(default_factory=list)
    patients: list = field(default_factory=list)


class Seeder:
    def __init__(self, ctx):
        self.ctx = ctx
        self.rng = ctx.rng
        self.today = ctx.today
        self.tz = ZoneInfo(settings.TIME_ZONE)
        self.out = Out()
        orgs = ctx.data["organisations"]
        self.orgs = orgs
        self.county = ctx.data["county"].code
        User = get_user_model()
        users = {u.username: u.pk for u in User.objects.filter(username__in=_DEMO_USERS)}
        profiles = {
            (p["staff__organisation__kind"], p["staff__organisation__region_id"]): p["pk"]
            for p in User.objects.filter(username__in=_DEMO_USERS).values(
                "pk", "staff__organisation__kind", "staff__organisation__region_id"
            )
        }
        self.user_of = profiles  # (org kind, region) → a demo account, if any
        self.governance_user = users.get("governance1")
        self._meds: dict = {}
        # nothing is stamped later than now (visits of today happened already)
        self.latest = timezone.localtime() - timedelta(minutes=5)
        # Asia/Shanghai has kept +08:00 all year since 1991
        self.offset = datetime.combine(self.today, time(10), tzinfo=self.tz).isoformat()[-6:]

    # ---------------------------------------------------------------- helpers

    def uid(self) -> str:
        """A random id from the seeded generator (same data on every run)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def at(self, day: date, hour: int = 10, minute: int = 0) -> datetime:
        """A local time on ``day``; today's never later than now."""
        stamp = datetime.combine(day, time(hour, minute), tzinfo=self.tz)
        return min(stamp, self.latest) if day >= self.today else stamp

    def stamp(self, day: date, hour: int = 10, minute: int = 0) -> str:
        if day >= self.today:
            return self.at(day, hour, minute).isoformat()
        return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00{self.offset}"

    def fu_line(self, values: dict) -> str:
        """One follow-up as a line of COPY text (defaults for the rest)."""
        row = FU_DEFAULT_TEXT.copy()
        for key, value in values.items():
            row[FU_INDEX[key]] = value
        return "\t".join(row)

    def org(self, kind: str, township: str):
        return self.orgs.get((kind, township))

    def county_org(self, kind: str):
        """The county's organisation of a kind (the escalation target)."""
        return self.orgs.get((kind, self.county))

    # ---------------------------------------------------------------- one patient

    def patient(self, p: dict) -> None:
        rng = self.rng
        status = p["status"]
        if status == "refused":
            return
        township = p["region_id"][:9]
        hc = p["managing_organisation_id"]
        doctor = self.user_of.get((OrganisationKind.HEALTH_CENTRE, township))
        start = max(p["registered_on"], self.today - timedelta(days=365 * YEARS_BACK))
        r = rng.random()
        profile = 0 if r < 0.85 else (1 if r < 0.97 else 2)  # settled, unsettled, volatile
        meds = self._regimen()
        r = rng.random()
        mode_pref = "home" if r < 0.45 else ("clinic" if r < 0.8 else "phone")
        # when this patient's history ends and how
        end, ending, loop_end = self.today, None, self.today
        if status in ("deceased", "moved_out", "removed", "lost"):
            ending = status
            span = (self.today - start).days
            end = self.today - timedelta(days=rng.randrange(3, max(span - 40, 4)))
            # the last visit comes before the misses / the death visit
            loop_end = end - timedelta(days=31 if status == "lost" else 1)
        stop_early = status == "active" and rng.random() < 0.05
        if stop_early:  # overdue: the last planned visit did not happen
            loop_end = self.today - timedelta(days=rng.randrange(20, 120))
        incident_day = None
        if rng.random() < 0.03:
            incident_day = start + timedelta(days=rng.randrange(max((loop_end - start).days, 1)))
        day = start + timedelta(days=rng.randrange(1, 15))
        prev = None  # rules.PreviousVisit of the last completed visit
        prev_due = None
        risk_prev = 0
        last = None
        while day <= loop_end:
            # sometimes the first attempt misses the patient
            if rng.random() < 0.05:
                miss_day = day
                day = day + timedelta(days=rng.randrange(2, 8))
                self._miss(p, miss_day, hc, doctor, prev_due)
                if day > loop_end:
                    break
            risk = self._risk(risk_prev, profile)
            incident_kind = None
            if incident_day is not None and incident_day <= day:
                incident_kind = self._incident(p, incident_day, township)
                incident_day = None
                risk = max(risk, 3 if incident_kind != "minor_trouble" else 2)
            hospital_now = rng.random() < 0.01
            fu_id, cls, due = self._visit(
                p,
                day,
                risk,
                prev,
                meds,
                mode_pref,
                hc,
                doctor,
                incident_kind,
                hospital_now,
            )
            if prev_due is not None and day > prev_due:
                self._overdue_handled(p, prev_due, day, township, hc, doctor)
            if risk >= settings.HIGH_RISK_MIN_LEVEL > risk_prev:
                # one alert per run of high-risk visits (followups.services.alerts)
                self._risk_alert(p, fu_id, day, risk, township)
            p["risk"] = risk  # the patient's latest risk, carried by later alerts
            last = {
                "risk": risk,
                "cls": cls,
                "day": day,
                "due": due,
                "hospital": hospital_now,
            }
            prev = rules.PreviousVisit(day, cls)
            prev_due = due
            risk_prev = risk
            # the next visit: before the due date, now and then late
            if rng.random() < 0.1:
                day = due + timedelta(days=rng.randrange(1, 21))
            else:
                day = due - timedelta(days=rng.randrange(0, 8))
            day = max(day, last["day"] + timedelta(days=1))
        changed = None
        if ending == "lost":
            changed = self._lost(p, end, township, hc, doctor, prev_due)
        elif ending == "deceased":
            changed = self._deceased(p, end, hc, doctor)
        elif ending in ("moved_out", "removed"):
            changed = end
        if status == "active" and prev_due is not None and prev_due < self.today:
            self._overdue_open(p, prev_due, township, hc)
        due = last["due"] if last else None
        if last is None and status in ("active", "lost"):
            # never visited yet: the first follow-up is due from registration
            due = patient_rules.first_followup_due(p["registered_on"], settings.FIRST_FOLLOWUP_DAYS)
        self.out.patients.append(
            (
                p["sid"],
                last["risk"] if last else None,
                last["cls"] if last else "",
                last["day"] if last else None,
                None if status == "deceased" else due,
                bool(last and last["hospital"] and status == "active"),
                self.at(changed, 10) if changed else None,
            )
        )

    def _regimen(self) -> str:
        """One patient's medication rows (JSON), kept for every visit."""
        rng = self.rng
        if rng.random() < 0.12:
            drugs = [INJECTION]
        else:
            drugs = rng.sample(DRUGS, 2 if rng.random() < 0.25 else 1)
        key = tuple(d for d, _dose in drugs)
        if key not in self._meds:
            rows = [{"drug": d, **dose} for d, dose in drugs]
            self._meds[key] = json.dumps(rows, ensure_ascii=False)
        return self._meds[key]

    def _risk(self, previous: int, profile: int) -> int:
        r = self.rng.random()
        if previous >= 3 and r < 0.5:
            return 3 if r < 0.35 else 4
        if profile == 2 and r > 0.8:
            return 3 if r < 0.94 else (4 if r < 0.99 else 5)
        if profile == 0:
            return 0 if r < 0.95 else (1 if r < 0.99 else 2)
        if r < 0.006:
            return 3
        return 0 if r < 0.5 else (1 if r < 0.85 else 2)

    def _clinical(self, risk: int) -> tuple:
        """(symptoms JSON, symptoms tuple, insight, sleep, diet, five social items)."""
        rng = self.rng
        if risk == 0 and rng.random() < 0.9:
            return CALM
        n = 1 if rng.random() < 0.6 else 2
        symptoms = tuple(sorted(rng.sample(SYMPTOM_POOL, n)))
        if risk >= 3 and rng.random() < 0.4 and "violence" not in symptoms:
            symptoms = (*symptoms, "violence")
        r = rng.random()
        level = "good" if r < 0.3 else ("fair" if r < 0.85 else "poor")
        if risk >= 3:
            insight = "absent" if rng.random() < 0.4 else "partial"
        else:
            insight = "partial" if rng.random() < 0.5 else "complete"
        social = (
            level,
            "fair" if level == "good" and r < 0.1 else level,
            WORK[r < 0.5],
            level,
            level,
        )
        return (_symptoms_json(symptoms), symptoms, insight, level, "good", social)

    def _visit(self, p, day, risk, prev, meds, mode, hc, doctor, incident_kind, hospital_now):
        rng = self.rng
        symptoms_json, symptoms, insight, sleep, diet, social = self._clinical(risk)
        adverse = rng.random() < 0.04
        assessment = rules.Assessment(
            risk_level=risk,
            insight=insight,
            symptoms=symptoms,
            social_function=social,
            adverse_reaction=adverse,
        )
        suggested = rules.suggest_classification(assessment)
        cls, reason = suggested, ""
        if suggested != rules.UNSTABLE and rng.random() < 0.01:
            cls, reason = rules.UNSTABLE, "家属反映近期情绪波动，需加密随访。"
        latest = rules.next_due_date(day, cls, previous_completed=prev)
        r = rng.random()
        compliance = "regular" if r < 0.72 else ("intermittent" if r < 0.92 else "none")
        effect = (
            ("improved" if r < 0.6 else "unchanged")
            if risk < 3
            else ("unchanged" if r < 0.6 else "worse")
        )
        fu_id = self.uid()
        due = latest.isoformat()
        self.out.followups.append(
            self.fu_line(
                {
                    "id": fu_id,
                    "patient_id": p["sid"],
                    "visit_date": day.isoformat(),
                    "mode": "home" if risk >= 3 else mode,
                    "outcome": "completed",
                    "contacts": CONTACTS_BOTH if r < 0.7 else CONTACTS_FAMILY,
                    "risk_level": str(risk),
                    "symptoms": symptoms_json,
                    "insight": insight,
                    "sleep": sleep,
                    "diet": diet,
                    "self_care": social[0],
                    "housework": social[1],
                    "work": social[2],
                    "learning": social[3],
                    "social": social[4],
                    "dangerous_behaviours": f'{{"{incident_kind}": 1}}' if incident_kind else "{}",
                    "lock_status": "none",
                    "hospitalization": "current" if hospital_now else "none",
                    "medication_compliance": compliance,
                    "adverse_reaction": "t" if adverse else "f",
                    "adverse_reaction_detail": "嗜睡" if adverse else "",
                    "treatment_effect": effect,
                    "referral_suggested": "t" if risk >= 4 else "f",
                    "referral_reason": "病情不稳定，建议转诊专科医院" if risk >= 4 else "",
                    "medications": meds,
                    "medication_guidance": meds,
                    "rehab_measures": REHAB_DAILY if r < 0.5 else "[]",
                    "suggested_classification": suggested,
                    "classification": cls,
                    "classification_override_reason": reason,
                    "suggested_next_due_date": due,
                    "next_due_date": due,
                    "organisation_id": _t(hc),
                    "recorded_by_id": _t(doctor),
                    "created_at": self.stamp(day, 9 + int(r * 8), int(r * 3600) % 60),
                }
            )
        )
        return fu_id, cls, latest

    def _miss(self, p, day, hc, doctor, due, *, lost_reason: str = "") -> str:
        fu_id = self.uid()
        self.out.followups.append(
            self.fu_line(
                {
                    "id": fu_id,
                    "patient_id": p["sid"],
                    "visit_date": day.isoformat(),
                    "mode": "phone",
                    "outcome": "not_reached",
                    "lost_reason": lost_reason,
                    "next_due_date": _t(due),
                    "organisation_id": _t(hc),
                    "recorded_by_id": _t(doctor),
                    "created_at": self.stamp(day, 15),
                }
            )
        )
        return fu_id

    def _lost(self, p, end, township, hc, doctor, due) -> date:
        rng = self.rng
        if rng.random() < 0.5:
            for i, days in enumerate((20, 10, 0)):
                fu_id = self._miss(
                    p,
                    end - timedelta(days=days),
                    hc,
                    doctor,
                    due,
                    lost_reason="unreachable_3x" if i == 2 else "",
                )
        else:
            fu_id = self.uid()
            self.out.followups.append(
                self.fu_line(
                    {
                        "id": fu_id,
                        "patient_id": p["sid"],
                        "visit_date": end.isoformat(),
                        "mode": "home",
                        "outcome": "lost",
                        "contacts": CONTACTS_FAMILY,
                        "lost_reason": rng.choice(["out_for_work", "moved", "missing", "other"]),
                        "organisation_id": _t(hc),
                        "recorded_by_id": _t(doctor),
                        "created_at": self.stamp(end, 11),
                    }
                )
            )
        raised = self.at(end, 11, 5)
        alert_id = self.uid()
        handled = (self.today - end).days >= 3
        self._alert(
            alert_id,
            p,
            "lost",
            lost_episode(end),
            raised,
            followup=fu_id,
            status="acknowledged" if handled else "open",
        )
        for kind in (OrganisationKind.POLICE_STATION, OrganisationKind.GOVERNANCE_OFFICE):
            org = self.org(kind, township)
            if org is not None:
                self._recipient(
                    alert_id,
                    org.pk,
                    raised,
                    ack=raised + timedelta(hours=5) if handled else None,
                    ack_by=self.user_of.get((kind, township)),
                )
        if hc:
            self._recipient(
                alert_id,
                hc,
                raised,
                ack=raised + timedelta(hours=2) if handled else None,
                ack_by=doctor,
            )
        return end

    def _deceased(self, p, end, hc, doctor) -> date:
        rng = self.rng
        self.out.followups.append(
            self.fu_line(
                {
                    "id": self.uid(),
                    "patient_id": p["sid"],
                    "visit_date": end.isoformat(),
                    "mode": "home",
                    "outcome": "deceased",
                    "contacts": CONTACTS_FAMILY,
                    "death_date": (end - timedelta(days=rng.randrange(0, 20))).isoformat(),
                    "death_cause": rng.choice(
                        [
                            "physical_illness",
                            "physical_illness",
                            "accident",
                            "suicide",
                            "complication",
                        ]
                    ),
                    "organisation_id": _t(hc),
                    "recorded_by_id": _t(doctor),
                    "created_at": self.stamp(end, 14),
                }
            )
        )
        return end

    def _incident(self, p, day, township) -> str:
        rng = self.rng
        kind = rng.choices(["minor_trouble", "trouble", "disaster"], [60, 32, 8])[0]
        station = self.org(OrganisationKind.POLICE_STATION, township)
        if station is None:
            return kind
        place, description, handling = INCIDENT_TEXT[kind]
        inc_id = self.uid()
        self.out.incidents.append(
            Incident(
                id=inc_id,
                patient_id=p["id"],
                kind=kind,
                occurred_on=day,
                place=place,
                description=description,
                handling=handling,
                guardian_failed_duties=rng.random() < 0.1,
                organisation_id=station.pk,
                recorded_by_id=self.user_of.get((OrganisationKind.POLICE_STATION, township)),
            )
        )
        raised = self.at(day, 16)
        alert_id = self.uid()
        recent = (self.today - day).days < rules.INCIDENT_FOLLOW_UP_DAYS
        self._alert(
            alert_id,
            p,
            "incident",
            f"incident:{inc_id}",
            raised,
            incident=inc_id,
            due_by=raised + timedelta(days=rules.INCIDENT_FOLLOW_UP_DAYS),
            status="open" if recent else "resolved",
            resolved_at=None if recent else raised + timedelta(days=5),
        )
        gov = self.org(OrganisationKind.GOVERNANCE_OFFICE, township)
        hc = p["managing_organisation_id"]
        for org_id, user in (
            (hc, self.user_of.get((OrganisationKind.HEALTH_CENTRE, township))),
            (gov.pk if gov else None, None),
        ):
            if org_id is None:
                continue
            if recent:
                self._recipient(alert_id, org_id, raised)
            else:
                self._recipient(
                    alert_id,
                    org_id,
                    raised,
                    ack=raised + timedelta(hours=3),
                    ack_by=user,
                    resolved=raised + timedelta(days=5),
                    note="已随访，监护人落实看护。",
                )
        return kind

    def _risk_alert(self, p, fu_id, day, risk, township) -> None:
        rng = self.rng
        raised = self.at(day, 17)
        alert_id = self.uid()
        age = (self.today - day).days
        late = rng.random() < 0.05
        # today's alerts may still be open; yesterday's were signed for in time
        status = "resolved"
        if age == 0:
            status = rng.choice(["open", "acknowledged"])
        elif age == 1:
            status = "acknowledged"
        self._alert(
            alert_id,
            p,
            "risk",
            f"followup:{fu_id}",
            raised,
            followup=fu_id,
            risk=risk,
            due_by=raised + timedelta(hours=rules.RISK_ACK_HOURS),
            status=status,
            resolved_at=raised + timedelta(days=2) if status == "resolved" else None,
        )
        ack_delay = timedelta(hours=rng.randrange(26, 40) if late else rng.randrange(1, 20))
        for kind in (OrganisationKind.POLICE_STATION, OrganisationKind.GOVERNANCE_OFFICE):
            org = self.org(kind, township)
            if org is None:
                continue
            user = self.user_of.get((kind, township))
            if status == "open":
                self._recipient(alert_id, org.pk, raised)
            elif status == "acknowledged":
                self._recipient(
                    alert_id, org.pk, raised, ack=raised + timedelta(hours=1), ack_by=user
                )
            else:
                self._recipient(
                    alert_id,
                    org.pk,
                    raised,
                    ack=raised + ack_delay,
                    ack_by=user,
                    resolved=raised + timedelta(days=2),
                    note=rng.choice(RISK_NOTES),
                )
        if late and status == "resolved":
            escalated_at = raised + timedelta(hours=rules.RISK_ACK_HOURS + 1)
            for kind in (OrganisationKind.POLICE_BUREAU, OrganisationKind.GOVERNANCE_OFFICE):
                org = self.county_org(kind)
                if org is not None:
                    self._recipient(
                        alert_id,
                        org.pk,
                        escalated_at,
                        escalated=True,
                        ack=escalated_at + timedelta(hours=1),
                        ack_by=self.governance_user
                        if kind == OrganisationKind.GOVERNANCE_OFFICE
                        else None,
                        resolved=raised + timedelta(days=2),
                        note="已督促乡镇落实。",
                    )

    def _overdue_handled(self, p, due, visit_day, township, hc, doctor) -> None:
        if hc is None:
            return
        raised = self.at(due + timedelta(days=1), 1, 30)
        resolved = self.at(visit_day, 12)
        alert_id = self.uid()
        self._alert(
            alert_id,
            p,
            "overdue",
            overdue_episode(due),
            raised,
            due_by=self.at(due + timedelta(days=rules.OVERDUE_ESCALATE_DAYS), 0),
            status="resolved",
            resolved_at=resolved,
        )
        note = OVERDUE_NOTE % visit_day.isoformat()
        self._recipient(
            alert_id,
            hc,
            raised,
            ack=resolved,
            ack_by=doctor,
            resolved=resolved,
            by=doctor,
            note=note,
        )
        if (visit_day - due).days >= rules.OVERDUE_ESCALATE_DAYS:
            prevention = self.county_org(OrganisationKind.PREVENTION_AGENCY)
            if prevention is not None:
                at = self.at(due + timedelta(days=rules.OVERDUE_ESCALATE_DAYS), 1, 30)
                self._recipient(
                    alert_id,
                    prevention.pk,
                    at,
                    escalated=True,
                    ack=resolved,
                    resolved=resolved,
                    note=note,
                )

    def _overdue_open(self, p, due, township, hc) -> None:
        if hc is None or due + timedelta(days=1) > self.today:
            return
        raised = self.at(due + timedelta(days=1), 1, 30)
        alert_id = self.uid()
        ack = self.rng.random() < 0.3
        self._alert(
            alert_id,
            p,
            "overdue",
            overdue_episode(due),
            raised,
            due_by=self.at(due + timedelta(days=rules.OVERDUE_ESCALATE_DAYS), 0),
            status="acknowledged" if ack else "open",
        )
        doctor = self.user_of.get((OrganisationKind.HEALTH_CENTRE, township))
        self._recipient(
            alert_id, hc, raised, ack=raised + timedelta(hours=8) if ack else None, ack_by=doctor
        )
        if (self.today - due).days >= rules.OVERDUE_ESCALATE_DAYS:
            prevention = self.county_org(OrganisationKind.PREVENTION_AGENCY)
            if prevention is not None:
                at = self.at(due + timedelta(days=rules.OVERDUE_ESCALATE_DAYS), 1, 30)
                self._recipient(alert_id, prevention.pk, at, escalated=True)
                self.out.alerts[-1]["status"] = "open"

    def _alert(self, alert_id, p, kind, episode, raised, **extra) -> None:
        self.out.alerts.append(
            {
                "id": alert_id,
                "patient_id": p["id"],
                "kind": kind,
                "episode": episode,
                "risk_level": extra.get("risk", p["risk"]),
                "followup_id": extra.get("followup"),
                "incident_id": extra.get("incident"),
                "raised_at": raised,
                "due_by": extra.get("due_by"),
                "status": extra.get("status", "open"),
                "resolved_at": extra.get("resolved_at"),
            }
        )

    def _recipient(
        self,
        alert_id,
        org_id,
        created,
        *,
        escalated=False,
        ack=None,
        ack_by=None,
        resolved=None,
        by=None,
        note="",
    ) -> None:
        status = "resolved" if resolved else ("acknowledged" if ack else "open")
        self.out.recipients.append(
            (
                alert_id,
                org_id,
                escalated,
                status,
                created,
                ack,
                ack_by if ack else None,
                resolved,
                (by or ack_by) if resolved else None,
                note,
            )
        )


_DEMO_USERS = ("doctor1", "doctor2", "police1", "police2", "governance1")

# Follow-up rows are built as COPY text directly (the seed's hot loop).
FU_COLUMNS = [f.column for f in FollowUp._meta.concrete_fields]
FU_INDEX = {c: i for i, c in enumerate(FU_COLUMNS)}
_FU_DEFAULTS = {
    "contacts": "[]",
    "symptoms": "[]",
    "dangerous_behaviours": "{}",
    "medications": "[]",
    "medication_guidance": "[]",
    "rehab_measures": "[]",
    "adverse_reaction": "f",
    "adverse_reaction_serious": "f",
    "referral_suggested": "f",
    "version": "1",
}
_NULLABLE = {f.column for f in FollowUp._meta.concrete_fields if f.null}
FU_DEFAULT_TEXT = [_FU_DEFAULTS.get(c, "\\N" if c in _NULLABLE else "") for c in FU_COLUMNS]
CONTACTS_BOTH = '["patient", "family"]'
CONTACTS_FAMILY = '["family"]'
REHAB_DAILY = '["daily_living"]'
SYMPTOM_POOL = [s for s in rules.SYMPTOMS if s != "other"]
WORK = ("good", "not_applicable")
CALM = ("[]", (), "complete", "good", "good", ("good", "good", "not_applicable", "good", "good"))
_SYMPTOMS_JSON: dict = {}


def _symptoms_json(symptoms: tuple) -> str:
    text = _SYMPTOMS_JSON.get(symptoms)
    if text is None:
        text = _SYMPTOMS_JSON[symptoms] = json.dumps(list(symptoms))
    return text


def _t(value) -> str:
    """A value as COPY text (no tabs, newlines or backslashes occur in seed data)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _copy_lines(table: str, columns: list[str], lines, chunk: int = 5000) -> None:
    """COPY text lines into ``table`` through psycopg, in chunks (PostgreSQL);
    on SQLite (the single-machine default of ``make run``) the same lines are
    parsed back and inserted with executemany."""
    if connection.vendor != "postgresql":
        _insert_lines_sqlite(table, columns, lines, chunk)
        return
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg's own cursor: COPY
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            buf = []
            for line in lines:
                buf.append(line)
                if len(buf) >= chunk:
                    copy.write("\n".join(buf) + "\n")
                    buf = []
            if buf:
                copy.write("\n".join(buf) + "\n")


def _rows_as_lines(rows, columns=None):
    for row in rows:
        values = row if columns is None else (row.get(c) for c in columns)
        yield "\t".join(_t(v) for v in values)


def simulate(ctx, patients: list[dict]) -> dict:
    """Simulate the history of ``patients`` (dicts with the register's
    columns; patients.seed calls this before it writes them, so each row is
    written once with its latest state). The rows to write wait in
    ``ctx.data`` for this stage; returns patient id → (risk level,
    classification, last follow-up date, next due date, in hospital, status
    changed at or None)."""
    started = _time.monotonic()
    s = Seeder(ctx)
    for row in sorted(patients, key=lambda p: p["id_number_index"]):
        p = {key: row[key] for key in _SIMULATED_FROM}
        p["risk"] = None
        p["sid"] = str(p["id"])
        s.patient(p)
    ctx.data[_SIMULATED] = (s.out, _time.monotonic() - started)
    return {uuid.UUID(sid): rest for sid, *rest in s.out.patients}


_SIMULATED = "followups.simulated"
_SIMULATED_FROM = ("id", "status", "registered_on", "region_id", "managing_organisation_id")


def seed(ctx) -> None:
    started = _time.monotonic()
    latest_written = _SIMULATED in ctx.data
    if latest_written:  # simulated by patients.seed, in this same run
        out, seconds = ctx.data.pop(_SIMULATED)
        started -= seconds
    else:  # a run resumed after the patients stage: simulate from the table
        s = Seeder(ctx)
        patients = list(
            Patient.objects.filter(region__path__startswith=ctx.data["county"].path)
            .order_by("id_number_index")
            .values(*_SIMULATED_FROM)
        )
        for p in patients:
            p["risk"] = None
            p["sid"] = str(p["id"])
            s.patient(p)
        out = s.out
    simulated = _time.monotonic()
    with bulk_load(
        Incident,
        FollowUp,
        Alert,
        AlertRecipient,
        NotificationDelivery,
        AlertRecipient.history.model,
    ):
        _write(out)
    if not latest_written:
        with bulk_load(Patient):  # its indexes: every row is rewritten
            if connection.vendor != "postgresql":
                _set_latest_sqlite(out.patients)
            else:
                _set_latest_postgres(out.patients)
    with connection.cursor() as cur:
        # fresh statistics for the stages and pages that read these tables next
        # (autovacuum cannot see rows before the seed commits)
        for table in (
            "followups_followup",
            "followups_alert",
            "followups_alertrecipient",
            "patients_patient",
            "patients_historicalpatient",
            "patients_incident",
        ):
            cur.execute(f"ANALYZE {table}")
    ctx.log(
        f"    {len(out.followups)} follow-ups, {len(out.incidents)} incidents, "
        f"{len(out.alerts)} alerts, {len(out.recipients)} alert recipients "
        f"(simulated in {simulated - started:.1f}s, written in {_time.monotonic() - simulated:.1f}s)"
    )


def _write(out: Out) -> None:
    # incidents first (alerts point at them), with their history rows
    bulk_create_with_history(
        out.incidents, Incident, batch_size=2000, default_change_reason="seed_demo"
    )
    _copy_lines(FollowUp._meta.db_table, FU_COLUMNS, out.followups)
    alert_cols = [f.column for f in Alert._meta.concrete_fields]
    _copy_lines(Alert._meta.db_table, alert_cols, _rows_as_lines(out.alerts, alert_cols))
    _copy_lines(
        AlertRecipient._meta.db_table,
        [
            "alert_id",
            "organisation_id",
            "escalated",
            "status",
            "created_at",
            "acknowledged_at",
            "acknowledged_by_id",
            "resolved_at",
            "resolved_by_id",
            "note",
        ],
        _rows_as_lines(out.recipients),
    )
    channel = notify.backend().channel
    with connection.cursor() as cur:
        # Follow-ups get no history rows here: the seed is their creation, and
        # half a million "+" rows would double the stage's writes. Their
        # history starts with the first change made in the application.
        rc = (
            "id, alert_id, organisation_id, escalated, status, created_at, note, "
            "acknowledged_at, acknowledged_by_id, resolved_at, resolved_by_id"
        )
        cur.execute(
            f"INSERT INTO followups_historicalalertrecipient ({rc}, history_date, "  # noqa: S608 - fixed names  # nosec B608
            f"history_change_reason, history_type) SELECT {rc}, created_at, 'seed_demo', '+' "
            f"FROM followups_alertrecipient"
        )
        # seeded alerts were told long ago: nothing is sent when the demo starts
        cur.execute(
            "INSERT INTO followups_notificationdelivery (recipient_id, channel, sent_at) "
            "SELECT id, %s, created_at FROM followups_alertrecipient",
            [channel],
        )


def _sqlite_converters(table: str, columns: list[str]):
    from django.apps import apps
    from django.utils.dateparse import parse_datetime

    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    by_column = {f.column: f for f in model._meta.concrete_fields}
    out = []
    for column in columns:
        field = by_column[column]
        kind = field.get_internal_type()
        if kind in ("BooleanField", "NullBooleanField"):
            out.append(lambda v: v == "t")
        elif kind == "UUIDField" or (
            field.is_relation and field.target_field.get_internal_type() == "UUIDField"
        ):
            out.append(lambda v: uuid.UUID(v).hex)
        elif kind == "DateTimeField":
            out.append(lambda v, f=field: f.get_db_prep_value(parse_datetime(v), connection))
        else:
            out.append(lambda v: v)
    return out


def _insert_lines_sqlite(table: str, columns: list[str], lines, chunk: int) -> None:
    converters = _sqlite_converters(table, columns)
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - model names, values are parameters  # nosec B608
    batch = []
    with connection.cursor() as cur:
        for line in lines:
            values = line.split("\t")
            batch.append(
                [
                    None if v == "\\N" else conv(v)
                    for conv, v in zip(converters, values, strict=True)
                ]
            )
            if len(batch) >= chunk:
                cur.executemany(sql, batch)
                batch = []
        if batch:
            cur.executemany(sql, batch)


LATEST_COLUMNS = [
    "id",
    "risk_level",
    "classification",
    "last_followup_date",
    "next_followup_due",
    "in_hospital",
    "status_changed_at",
]


def _set_latest_postgres(rows) -> None:
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE seed_latest (id uuid PRIMARY KEY, risk_level smallint, "
            "classification varchar(20), last_followup_date date, next_followup_due date, "
            "in_hospital boolean, status_changed_at timestamptz) ON COMMIT DROP"
        )
    _copy_lines("seed_latest", LATEST_COLUMNS, _rows_as_lines(rows))
    with connection.cursor() as cur:
        # the patients' latest state (their seeded "+" history rows keep the
        # registration: rewriting 50,000 history rows would double the cost)
        cur.execute(
            "UPDATE patients_patient p SET risk_level = s.risk_level, "
            "classification = s.classification, last_followup_date = s.last_followup_date, "
            "next_followup_due = s.next_followup_due, in_hospital = s.in_hospital, "
            "status_changed_at = COALESCE(s.status_changed_at, p.status_changed_at) "
            "FROM seed_latest s WHERE p.id = s.id"
        )


def _set_latest_sqlite(rows) -> None:
    from patients.models import Patient

    changed_at = Patient._meta.get_field("status_changed_at")
    params = []
    for pid, risk, classification, last, due, in_hospital, status_at in rows:
        params.append(
            [
                risk,
                classification,
                last,
                due,
                bool(in_hospital),
                changed_at.get_db_prep_value(status_at, connection) if status_at else None,
                uuid.UUID(str(pid)).hex,
            ]
        )
    with connection.cursor() as cur:
        cur.executemany(
            "UPDATE patients_patient SET risk_level = %s, classification = %s, "
            "last_followup_date = %s, next_followup_due = %s, in_hospital = %s, "
            "status_changed_at = COALESCE(%s, status_changed_at) WHERE id = %s",
            params,
        )
