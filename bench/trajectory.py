"""Two years of follow-ups of one patient, simulated (pure Python, no ORM).

The visits follow DOMAIN.md → Follow-ups: each completed visit is
classified from its clinical items (unstable / basically stable / stable)
and sets the next due date (14 days, 1 month on a failed recheck, 3 months);
doctors mostly come a few days before the due date, sometimes late (an
overdue episode, closed by that visit); phone attempts sometimes miss (the
due date stays); some patients have risk episodes; some are lost, die,
move out or are removed, and some are not visited for weeks (overdue now).

Clinical items come from a fixed pool of variants per risk level (so the
generator stays fast); the bench tests cross-check :func:`classify` and
:func:`next_due` against ``followups.rules``.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate

UNSTABLE, BASICALLY_STABLE, STABLE = "unstable", "basically_stable", "stable"
HIGH_RISK = 3
WINDOW_DAYS = 730  # two years of history
FIRST_FOLLOWUP_DAYS = 14  # registration → first due date (settings.FIRST_FOLLOWUP_DAYS)

SYMPTOMS = (
    "hallucination",
    "communication_difficulty",
    "suspicion",
    "moodiness",
    "odd_behaviour",
    "excitement",
    "pessimism",
    "wandering",
    "self_talk",
    "withdrawal",
)
LOST_REASONS = ("out_for_work", "moved", "missing", "other")
DEATH_CAUSES = ("physical_illness", "suicide", "accident", "complication")


class Weighted:
    """A weighted choice driven by one ``rng.random()`` (faster than choices)."""

    def __init__(self, pairs):
        self.values = [v for v, _w in pairs]
        self.cum = list(accumulate(w for _v, w in pairs))
        self.total = self.cum[-1]

    def __call__(self, r: float):
        return self.values[bisect(self.cum, r * self.total)]


# patient profiles: chance of a risk episode per completed visit, and the
# risk level outside episodes (weights of 0, 1, 2)
PROFILE = Weighted((("stable", 80), ("mild", 14), ("volatile", 6)))
EPISODE_CHANCE = {"stable": 0.003, "mild": 0.03, "volatile": 0.15}
CALM_RISK = {
    "stable": Weighted(((0, 97), (1, 2), (2, 1))),
    "mild": Weighted(((0, 82), (1, 13), (2, 5))),
    "volatile": Weighted(((0, 55), (1, 28), (2, 17))),
}
EPISODE_RISK = Weighted(((3, 60), (4, 30), (5, 10)))
MODE = Weighted((("clinic", 30), ("home", 45), ("phone", 25)))
LATE_CHANCE = 0.07  # a visit after its due date (an overdue episode)
MISS_CHANCE = 0.03  # a phone attempt that does not reach anyone


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(d: date, months: int) -> date:
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    last = _DAYS[month - 1]
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        last = 29
    return date(year, month, min(d.day, last))


def classify(
    risk: int,
    insight: str,
    symptoms: tuple[str, ...],
    social: tuple[str, ...],
    adverse: bool,
    serious: bool,
) -> str:
    """DOMAIN.md → Classification (the system's suggestion)."""
    if risk >= HIGH_RISK or insight == "absent" or serious or "violence" in symptoms:
        return UNSTABLE
    if risk >= 1 or insight == "partial" or symptoms or "poor" in social or adverse:
        return BASICALLY_STABLE
    return STABLE


def next_due(visit: date, classification: str, previous: tuple[date, str] | None) -> date:
    """DOMAIN.md → Next due date (never more than three months)."""
    if classification == UNSTABLE:
        due = visit + timedelta(days=14)
    elif classification == BASICALLY_STABLE:
        rechecked = (
            previous is not None
            and previous[1] == BASICALLY_STABLE
            and add_months(visit, -1) <= previous[0] <= visit
        )
        due = add_months(visit, 1) if rechecked else visit + timedelta(days=14)
    else:
        due = add_months(visit, 3)
    return min(due, add_months(visit, 3))


@dataclass(frozen=True, slots=True)
class Clinical:
    """The clinical items of one completed visit (one variant of the pool)."""

    risk: int
    symptoms: tuple[str, ...]
    insight: str
    sleep: str
    diet: str
    social: tuple[str, str, str, str, str]  # self_care, housework, work, learning, social
    compliance: str
    adverse: bool
    serious: bool
    effect: str
    classification: str


VARIANTS_PER_RISK = 64


def _variant(rng: random.Random, risk: int) -> Clinical:
    if risk >= HIGH_RISK:
        symptoms = tuple(rng.sample(SYMPTOMS, rng.randint(2, 4)))
        if rng.random() < 0.4:
            symptoms += ("violence",)
        insight = rng.choice(("partial", "absent"))
        social = tuple(rng.choice(("fair", "poor")) for _ in range(5))
        compliance = rng.choice(("intermittent", "none", "regular"))
        effect = rng.choice(("worse", "unchanged"))
        sleep, diet = rng.choice(("fair", "poor")), "fair"
    elif risk >= 1:
        symptoms = tuple(rng.sample(SYMPTOMS, rng.randint(0, 2)))
        insight = "partial" if rng.random() < 0.6 else "complete"
        social = tuple(
            "poor" if rng.random() < 0.03 else rng.choice(("good", "fair")) for _ in range(5)
        )
        compliance = rng.choice(("regular", "regular", "intermittent"))
        effect = rng.choice(("improved", "unchanged"))
        sleep, diet = rng.choice(("good", "fair")), "good"
    else:
        symptoms = () if rng.random() < 0.97 else (rng.choice(SYMPTOMS),)
        insight = "complete" if rng.random() < 0.97 else "partial"
        social = tuple(rng.choice(("good", "good", "fair")) for _ in range(5))
        compliance = rng.choices(("regular", "intermittent", "none", "not_needed"), (78, 14, 4, 4))[
            0
        ]
        effect = rng.choice(("improved", "cured", "unchanged"))
        sleep, diet = "good", "good"
    adverse = rng.random() < 0.02
    serious = adverse and risk >= HIGH_RISK and rng.random() < 0.2
    return Clinical(
        risk=risk,
        symptoms=symptoms,
        insight=insight,
        sleep=sleep,
        diet=diet,
        social=social,
        compliance=compliance,
        adverse=adverse,
        serious=serious,
        effect=effect,
        classification=classify(risk, insight, symptoms, social, adverse, serious),
    )


def variant_pool(seed: int = 7) -> dict[int, tuple[Clinical, ...]]:
    """A fixed pool of clinical variants for each risk level 0–5."""
    rng = random.Random(seed)
    return {risk: tuple(_variant(rng, risk) for _ in range(VARIANTS_PER_RISK)) for risk in range(6)}


POOL = variant_pool()


@dataclass(slots=True)
class Visit:
    visit_date: date
    outcome: str  # completed / not_reached / lost / deceased
    mode: str
    clinical: Clinical | None = None
    classification: str = ""
    hospitalization: str = ""
    referral: bool = False
    dangerous: bool = False  # a minor trouble during the episode
    next_due: date | None = None
    late_due: date | None = None  # the due date this visit came after (overdue episode)
    lost_reason: str = ""
    death_date: date | None = None
    death_cause: str = ""


@dataclass(slots=True)
class Outcome:
    """The patient's state after the simulated history (the denormalised
    latest fields of ``patients.Patient``) plus its visits."""

    status: str
    status_changed: date | None
    visits: list[Visit]
    risk_level: int | None = None
    classification: str = ""
    last_followup_date: date | None = None
    next_followup_due: date | None = None
    in_hospital: bool = False


def simulate(rng, *, today: date, registered_on: date, status: str, overdue: bool) -> Outcome:
    """The visits of one patient and the state they leave.

    ``status`` is the management status the patient ends with; ``overdue``
    makes an active patient stop being visited some weeks before today.
    """
    r = rng.random
    window_start = today - timedelta(days=WINDOW_DAYS)
    start = max(window_start, registered_on)
    end, ending, status_changed = today, None, None
    if status in ("lost", "deceased", "moved_out", "removed"):
        end = today - timedelta(days=5 + int(r() * 596))
        ending, status_changed = status, end
    elif status == "active" and overdue:
        end = today - timedelta(days=15 + int(r() * 106))
    first_due = registered_on + timedelta(days=FIRST_FOLLOWUP_DAYS)  # as registration sets it
    if status == "refused":  # on the register, not visited
        return Outcome(status=status, status_changed=None, visits=[], next_followup_due=first_due)
    # three misses in a row (unreachable_3x) or a ``lost`` visit end a lost history
    lost_by_misses = ending == "lost" and r() < 0.3
    loop_end = end - timedelta(days=30 if lost_by_misses else 1) if ending else end

    profile = PROFILE(r())
    episode_chance = EPISODE_CHANCE[profile]
    calm = CALM_RISK[profile]
    visits: list[Visit] = []
    d = start + timedelta(days=int(r() * (91 if start == window_start else 15)))
    due: date | None = None
    previous: tuple[date, str] | None = None
    flagged: date | None = None  # one overdue episode per due date
    in_episode = False
    misses = 0
    while d <= loop_end:
        if misses < 2 and r() < MISS_CHANCE:
            visits.append(Visit(d, "not_reached", "phone", next_due=due))
            misses += 1
            d += timedelta(days=3 + int(r() * 13))
            continue
        misses = 0
        # a completed visit after the due date closes that overdue episode
        late_due = due if due is not None and d > due and due != flagged else None
        if late_due is not None:
            flagged = late_due
        if in_episode:
            risk = (
                (1, 2, 2, 3, 4, 0)[int(r() * 6)]
                if profile == "volatile"
                else (1, 2, 0)[int(r() * 3)]
            )
        elif r() < episode_chance:
            risk = EPISODE_RISK(r())
        else:
            risk = calm(r())
        in_episode = risk >= HIGH_RISK
        c = POOL[risk][int(r() * VARIANTS_PER_RISK)]
        due = next_due(d, c.classification, previous)
        x = r()
        hospitalization = "none"
        if risk >= HIGH_RISK and x < 0.1:
            hospitalization = "current"
        elif x > 0.95:
            hospitalization = "past"
        visits.append(
            Visit(
                d,
                "completed",
                MODE(r()),
                clinical=c,
                classification=c.classification,
                hospitalization=hospitalization,
                referral=risk >= HIGH_RISK and r() < 0.6,
                dangerous=risk >= 4 and r() < 0.3,
                next_due=due,
                late_due=late_due,
            )
        )
        previous = (d, c.classification)
        if r() < LATE_CHANCE:
            d = due + timedelta(days=1 + int(r() * 40))
        else:
            d = max(d + timedelta(days=7), due - timedelta(days=int(r() * 5)))

    if overdue and status == "active":
        # stop before today so that the last due date has passed
        while visits and (visits[-1].next_due is None or visits[-1].next_due >= today):
            visits.pop()
    if ending == "lost":
        if lost_by_misses:
            for k in range(3):
                visits.append(Visit(end - timedelta(days=14 * (2 - k)), "not_reached", "phone"))
            visits[-1].lost_reason = "unreachable_3x"
        else:
            visits.append(Visit(end, "lost", "home", lost_reason=LOST_REASONS[int(r() * 4)]))
    elif ending == "deceased":
        visits.append(
            Visit(
                end,
                "deceased",
                "home",
                death_date=end - timedelta(days=int(r() * 11)),
                death_cause=DEATH_CAUSES[int(r() * 4)],
            )
        )
    out = Outcome(status=status, status_changed=status_changed, visits=visits)
    _apply_latest(out)
    if out.last_followup_date is None and status in ("active", "lost"):
        out.next_followup_due = first_due  # never visited: due from registration
    return out


def _apply_latest(out: Outcome) -> None:
    """The patient's latest fields, as ``followups.services`` keeps them:
    from the newest completed visit; a miss keeps the due date; death and
    the end of management clear it."""
    due = None
    for v in out.visits:
        if v.outcome == "completed":
            out.risk_level = v.clinical.risk
            out.classification = v.classification
            out.last_followup_date = v.visit_date
            out.in_hospital = v.hospitalization == "current"
            due = v.next_due
        elif v.outcome == "not_reached":
            v.next_due = due  # the due date stays
    out.next_followup_due = due
    if out.status in ("deceased", "moved_out", "removed"):
        out.next_followup_due = None
        out.in_hospital = False
