"""The authorization matrix (SECURITY.md → authorization matrix; G1–G3).

ONE entry per route of the URL conf (``tests.authz.routes``): for each HTTP
method, for each persona, the expected answer at each data position. A route
without an entry fails ``test_every_route_is_in_the_matrix``.

Cells
- an int: the status (403 = the role may not, 404 = not found / out of scope);
- ``LOGIN``: anonymous — pages redirect to the login page, the API says 401;
- ``Rows(OWN, OTHER)``: 200, and exactly these positions' objects are listed
  (markers: patient names; see tests.authz.objects);
- for a route with object kwargs, a 3-tuple (own, other, county): the object
  of township A1, of township A2 (same county), of county C.
Payloads: ``payload="patient"`` means every 200/201 JSON patient has exactly
the keys of ``patients.fieldsets.FIELDSETS[<persona's fieldset>]``; every
JSON answer to a non-health persona is scanned for clinical keys, and
``patient_page`` pages must not show a non-health persona the diagnosis.
``fields={group: keys}`` is the allowlist of every other JSON answer that
carries patient-related data (G3): each object of a 200/201 answer (each
row of a paginated list) has exactly the keys of the persona's group, its
patient field set (``health``, ``police``, ``governance``, ``civil_affairs``,
``disabled_federation``) or, for roles without one, its role (``finance``,
``official`` …); a group the entry does not name may not get a 200 with
data at all. The sets are literals on purpose: a key added to a serializer
fails the matrix until it is added here, consciously. Personas without a
patient field set are also scanned for identity keys anywhere in the tree.

POST cells send ``body`` (empty by default); an allowed role then gets the
form back with its errors (200), a DRF 400, or the action's redirect (302).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OWN, OTHER, COUNTY = "own", "other", "county"
LOGIN = "login"

PERSONAS = (
    "doctor_a",
    "doctor_b",
    "doctor_c",
    "hospital",
    "police_a",
    "governance",
    "civil",
    "dpf",
    "finance",
    "official",
    "admin",
    "security_admin",
    "audit_admin",
    "anonymous",
)


@dataclass(frozen=True)
class Rows:
    positions: frozenset[str]
    status: int = 200

    def __init__(self, *positions: str):
        object.__setattr__(self, "positions", frozenset(positions))
        object.__setattr__(self, "status", 200)

    def __repr__(self) -> str:
        return f"Rows({', '.join(sorted(self.positions))})"


@dataclass(frozen=True)
class Entry:
    methods: dict  # "GET" → {persona: cell}
    kwargs: dict = field(default_factory=dict)  # URL kwarg → object kind
    rows: str | None = None  # object kind whose markers Rows cells look for
    body: dict = field(default_factory=dict)  # method → request body
    payload: str | None = None  # "patient": check the field set of JSON payloads
    fields: dict = field(default_factory=dict)  # group → the JSON objects' exact keys
    patient_page: bool = False  # a page about patients: no diagnosis for non-health
    note: str = ""


def cells(default, **overrides) -> dict:
    """Every persona gets ``default`` except those overridden; anonymous gets
    LOGIN unless overridden."""
    out = dict.fromkeys(PERSONAS, default)
    out["anonymous"] = LOGIN
    unknown = set(overrides) - set(PERSONAS)
    if unknown:
        raise ValueError(f"unknown personas {sorted(unknown)}")
    out.update(overrides)
    return out


# --- who sees which patient (the patient selectors' answer) -----------------
# own = pA1 (township A1), other = pB1 (township A2), county = pC1 (county C)
PATIENT_SCOPE = {
    "doctor_a": (True, False, False),
    "doctor_b": (False, True, False),
    "doctor_c": (False, False, True),
    "hospital": (True, True, False),
    "police_a": (True, False, False),
    "governance": (True, True, False),
    "civil": (True, True, False),
    "dpf": (True, True, False),
}
HEALTH = ("doctor_a", "doctor_b", "doctor_c", "hospital")
ADMINS = ("admin", "security_admin", "audit_admin")


def scoped(ok, *, roles=tuple(PATIENT_SCOPE), others=403, missing=404, scope=None) -> dict:
    """Per persona a 3-tuple: ``ok`` where the object is in the persona's
    scope, ``missing`` where it is not; personas outside ``roles`` get
    ``others`` at every position (an int or a 3-tuple)."""
    scope = PATIENT_SCOPE if scope is None else scope
    out = {}
    for persona in PERSONAS:
        if persona == "anonymous":
            out[persona] = (LOGIN,) * 3
        elif persona in roles:
            out[persona] = tuple(ok if s else missing for s in scope.get(persona, (0, 0, 0)))
        else:
            out[persona] = others if isinstance(others, tuple) else (others,) * 3
    return out


def listing(*, roles=tuple(PATIENT_SCOPE), others=403, scope=None) -> dict:
    """A list of patient-bound objects: each role in ``roles`` sees exactly
    its scope's rows; the others get ``others``."""
    scope = PATIENT_SCOPE if scope is None else scope
    out = {}
    for persona in PERSONAS:
        if persona == "anonymous":
            out[persona] = LOGIN
        elif persona in roles:
            shown = [
                p for p, s in zip((OWN, OTHER, COUNTY), scope.get(persona, ()), strict=False) if s
            ]
            out[persona] = Rows(*shown)
        else:
            out[persona] = others
    return out


def override(base: dict, **changes) -> dict:
    return {**base, **changes}


MATRIX: dict[str, Entry] = {}


# --- the entries --------------------------------------------------------------
COUNTY_A = dict.fromkeys(PERSONAS, (True, True, False))  # objects of county A only
ALL = dict.fromkeys(PERSONAS, (True, True, True))
TOWNSHIP_DOCTORS = {
    "doctor_a": (True, False, False),
    "doctor_b": (False, True, False),
    "doctor_c": (False, False, True),
}
PATIENT_PAGE = {"patient_page": True}


def only(ok, *roles, others=403) -> dict:
    """A page without objects: ``ok`` for ``roles``, ``others`` for the rest."""
    return cells(others, **dict.fromkeys(roles, ok))


def everyone(status) -> dict:
    return cells(status)


def export(get_cells: dict, **entry) -> Entry:
    """An export page (accounts.exports.export_view): GET shows the reason
    form, POST with a reason gives the file; the same answers for both. The
    matrix's personas hold the export permission (tests/authz/conftest.py):
    without it every export is 403 (tests/test_exports_everywhere.py)."""
    return Entry(
        {"GET": get_cells, "POST": get_cells}, body={"POST": {"reason": "季度工作核查"}}, **entry
    )


M = MATRIX


def keys(text: str) -> frozenset[str]:
    return frozenset(text.split())


def fields(key_set: frozenset[str], *groups: str) -> dict:
    """The same allowlist for each of ``groups`` (see ``Entry.fields``)."""
    return dict.fromkeys(groups, key_set)


# --- allowlists of the JSON that carries patient-related data (G3) -------------
# literal on purpose: a serializer's new key fails the matrix until added here
HEALTH_GROUP = "health"
FOLLOWUP_KEYS = keys(
    """id patient organisation recorded_by visit_date mode outcome lost_reason death_date
    death_cause death_cause_detail risk_level dangerous_behaviours insight sleep diet
    self_care housework work learning social symptoms symptoms_other lock_status
    hospitalization last_discharge_date lab_tests medication_compliance adverse_reaction
    adverse_reaction_detail adverse_reaction_serious treatment_effect referral_suggested
    referral_reason referred_to rehab_measures rehab_measures_other medications
    medication_guidance classification suggested_classification
    classification_override_reason next_due_date suggested_next_due_date contacts
    idempotency_key version created_at"""
)
ALERT_KEYS = keys(
    """id kind patient followup incident referral organisation risk_level status
    alert_status raised_at due_by acknowledged_at acknowledged_by resolved_at resolved_by
    note escalated"""
)
SETTLEMENT_FINANCE_KEYS = keys(
    """id number kind hospital region episode admission_date discharge_date case_number
    policy policy_version total_cost in_scope_cost out_of_scope_cost patient_pays lines
    reverses settled_on created_at"""
)
# finance pays without knowing whom for: no patient key
SETTLEMENT_FIELDS = {
    **fields(
        SETTLEMENT_FINANCE_KEYS | {"patient"}, HEALTH_GROUP, "civil_affairs", "disabled_federation"
    ),
    "finance": SETTLEMENT_FINANCE_KEYS,
}
AWARD_KEYS = keys(
    """id number patient region source status policy guardian_name guardian_relation
    applied_on active_from valid_until notice_until stop_from ended_on end_reason
    reapply_from"""
)
AWARD_GROUPS = (HEALTH_GROUP, "governance", "civil_affairs")
BATCH_KEYS = keys(
    """id number region period period_start period_end status total line_count lines
    drawn_at reviewed_at paid_at payment_reference"""
)
REFERRAL_KEYS = keys(
    """id kind status patient patient_name from_organisation from_organisation_name
    to_organisation to_organisation_name to_region to_address reason patient_consent
    guardian_consent consent_date green_channel discharge_date discharge_sheet accept_by
    complete_by status_changed_at created_at events"""
)
RUN_KEYS = keys(
    "id kind partner partner_name period status rows sha256 attempts delivered_at created_at"
)
INDICATOR_KEYS = keys(
    "region region_name level period statistics_date source final computed_at indicators"
)

# core ------------------------------------------------------------------------
M["home"] = Entry({"GET": cells(302)}, note="redirects each role to its home page")
M["healthz"] = Entry({"GET": cells(200, anonymous=200)}, note="login_not_required")
M["set_language"] = Entry(
    {"POST": cells(302, anonymous=302)}, note="login_not_required: the login page has it"
)
M["api-schema"] = Entry({"GET": everyone(200)})
M["api-docs"] = Entry({"GET": everyone(200)})

# accounts pages --------------------------------------------------------------
SIGNED_IN = cells(302, anonymous=200)  # the login page sends signed-in users home
M["accounts:login"] = Entry({"GET": SIGNED_IN, "POST": SIGNED_IN, "PUT": SIGNED_IN})
M["accounts:logout"] = Entry({"POST": cells(302)})
M["accounts:no-role"] = Entry({"GET": cells(403)}, note="only for accounts without a role")
M["accounts:password-change"] = Entry({"GET": cells(200), "POST": cells(200)})
M["accounts:mfa-setup"] = Entry(
    {"GET": only(302, *ADMINS, others=200), "POST": only(302, *ADMINS, others=200)},
    note="the 三员 already have a confirmed device: sent to verify; an empty code "
    "gets the form back",
)
M["accounts:mfa-verify"] = Entry({"GET": cells(302), "POST": cells(302)})
M["accounts:staff-list"] = Entry({"GET": only(200, "admin", "security_admin")})
M["accounts:staff-create"] = Entry({"GET": only(200, "admin"), "POST": only(200, "admin")})
STAFF_A = {"kwargs": {"pk": "staff"}}
M["accounts:staff-detail"] = Entry(
    {"GET": scoped(200, roles=("admin", "security_admin"), scope=COUNTY_A)}, **STAFF_A
)
M["accounts:staff-change"] = Entry(
    {"POST": scoped(400, roles=("admin",), scope=COUNTY_A)},
    note="an empty form; a valid one is a request the security admin authorises",
    **STAFF_A,
)
M["accounts:staff-password-reset"] = Entry(
    {
        "GET": scoped(200, roles=("admin",), scope=COUNTY_A),
        "POST": scoped(200, roles=("admin",), scope=COUNTY_A),
    },
    note="POST requests a reset: the first password half is shown once in the 200",
    **STAFF_A,
)
M["accounts:account-request-list"] = Entry(
    {"GET": only(200, "admin", "security_admin")},
    note="two-person rule (G4): the security admin decides, the system admin follows",
)
M["accounts:account-request-approve"] = Entry(
    {
        "GET": scoped(200, roles=("security_admin",), scope=COUNTY_A),
        "POST": scoped(200, roles=("security_admin",), scope=COUNTY_A),
    },
    kwargs={"pk": "account_request"},
    note="POST authorises a new account: the second password half is shown once in the 200",
)
M["accounts:account-request-reject"] = Entry(
    {
        "GET": scoped(200, roles=("security_admin",), scope=COUNTY_A),
        "POST": scoped(200, roles=("security_admin",), scope=COUNTY_A),
    },
    kwargs={"pk": "account_request"},
    note="an empty POST gets the form back: a rejection needs a reason",
)
M["accounts:staff-deactivate"] = Entry(
    {
        "GET": scoped(200, roles=("admin",), scope=COUNTY_A),
        "POST": scoped(302, roles=("admin",), scope=COUNTY_A),
    },
    note="GET asks for confirmation",
    **STAFF_A,
)
for _name in ("staff-reactivate", "staff-export"):
    M[f"accounts:{_name}"] = Entry(
        {"POST": scoped(302, roles=("admin",), scope=COUNTY_A)}, **STAFF_A
    )
M["accounts:staff-mfa-reset"] = Entry(
    {
        "GET": scoped(200, roles=("security_admin",), scope=COUNTY_A),
        "POST": scoped(302, roles=("security_admin",), scope=COUNTY_A),
    },
    **STAFF_A,
)
M["accounts:lockout-list"] = Entry({"GET": only(200, "security_admin")})
M["accounts:lockout-release"] = Entry(
    {"POST": only(404, "security_admin")}, note="no username given: nothing to unlock"
)
M["accounts:apikey-list"] = Entry(
    {"GET": only(200, "admin", "security_admin"), "POST": only(200, "security_admin")},
    note="the security admin requests keys, the system admin approves them",
)
for _name in ("apikey-approve", "apikey-reject"):
    M[f"accounts:{_name}"] = Entry(
        {
            "GET": scoped(200, roles=("admin",), scope=COUNTY_A),
            "POST": scoped(302, roles=("admin",), scope=COUNTY_A),
        },
        kwargs={"pk": "apikey"},
    )
NOT_ADMINS = tuple(p for p in PERSONAS if p not in ADMINS and p != "anonymous")
M["accounts:apikey-mine"] = Entry(
    {"GET": only(200, *NOT_ADMINS)}, note="keys are never held by the 三员 (G4)"
)
M["accounts:apikey-collect"] = Entry(
    {
        "GET": scoped(200, roles=NOT_ADMINS, scope=TOWNSHIP_DOCTORS),
        "POST": scoped(200, roles=NOT_ADMINS, scope=TOWNSHIP_DOCTORS),
    },
    kwargs={"pk": "apikey_approved"},
    note="only the key's custodian; the secret is shown once in the 200",
)
M["accounts:apikey-revoke"] = Entry(
    {
        "GET": scoped(200, roles=("security_admin",), scope=COUNTY_A),
        "POST": scoped(302, roles=("security_admin",), scope=COUNTY_A),
    },
    kwargs={"pk": "apikey"},
)
M["accounts:breakglass-request"] = Entry({"GET": only(200, *HEALTH), "POST": only(200, *HEALTH)})

# accounts API ----------------------------------------------------------------
M["accounts-api:auth-token"] = Entry(
    {"POST": cells(400, anonymous=400)}, note="no credentials in the body: 400 for everyone"
)
M["accounts-api:region-list"] = Entry({"GET": everyone(200)})
M["accounts-api:region-detail"] = Entry(
    {"GET": scoped(200, roles=PERSONAS, scope=ALL)}, kwargs={"code": "region"}
)
M["accounts-api:organisation-list"] = Entry({"GET": everyone(200)})
M["accounts-api:organisation-detail"] = Entry(
    {"GET": scoped(200, roles=PERSONAS, scope=ALL)}, kwargs={"pk": "organisation"}
)

# patients pages --------------------------------------------------------------
PATIENT = dict(kwargs={"pk": "patient"}, **PATIENT_PAGE)
M["patients:list"] = Entry(
    {"GET": listing(others=Rows()), "POST": listing(others=Rows())},
    rows="patient",
    note="roles without patients get an empty list; the search form POSTs (no "
    "search term in a URL)",
    **PATIENT_PAGE,
)
M["patients:create"] = Entry({"GET": only(200, *HEALTH), "POST": only(400, *HEALTH)})
M["patients:detail"] = Entry({"GET": scoped(200, others=404)}, **PATIENT)
M["patients:edit"] = Entry(
    {
        "GET": override(scoped(200, others=404), governance=(403, 403, 404)),
        "POST": override(scoped(400, others=404), governance=(403, 403, 404)),
    },
    note="governance may change nothing (fieldsets.WRITABLE)",
    **PATIENT,
)
M["patients:reveal-id"] = Entry(
    {"POST": override(scoped(400, others=404), **dict.fromkeys(HEALTH, (403, 403, 403)))},
    note="health sees the full number already; others must give a reason (400 without)",
    **PATIENT,
)
M["patients:print-supplement"] = Entry({"GET": scoped(200, roles=HEALTH, others=403)}, **PATIENT)
M["patients:care-team-add"] = Entry(
    {
        "POST": override(
            scoped(400, others=404),
            police_a=(403, 404, 404),
            governance=(403, 403, 404),
            civil=(403, 403, 404),
            dpf=(403, 403, 404),
        )
    },
    **PATIENT,
)
M["patients:care-team-remove"] = Entry(
    {
        "POST": override(
            scoped(302, others=404),
            police_a=(403, 404, 404),
            governance=(403, 403, 404),
            civil=(403, 403, 404),
            dpf=(403, 403, 404),
        )
    },
    kwargs={"pk": "patient", "member_id": "care_member"},
)

# patients API ----------------------------------------------------------------
M["patients-api:patient-list"] = Entry(
    {"GET": listing(others=403), "POST": only(400, *HEALTH)},
    rows="patient",
    payload="patient",
)
M["patients-api:patient-detail"] = Entry(
    {
        "GET": scoped(200, others=404),
        "PATCH": override(scoped(428, others=404), governance=(403, 403, 404)),
    },
    kwargs={"id": "patient"},
    payload="patient",
    note="PATCH without If-Match: 428 once allowed and in scope",
)

# follow-up pages -------------------------------------------------------------
FOR_PATIENT = dict(kwargs={"patient_id": "patient"}, **PATIENT_PAGE)
M["followups:overdue"] = Entry({"GET": only(200, *HEALTH)})
M["followups:overdue-export"] = export(only(200, *HEALTH))
M["followups:not-reached"] = Entry({"POST": scoped(302, roles=HEALTH, others=403)}, **FOR_PATIENT)
M["followups:create"] = Entry(
    {"GET": scoped(200, roles=HEALTH, others=403), "POST": scoped(200, roles=HEALTH, others=403)},
    **FOR_PATIENT,
)
M["followups:suggest"] = Entry({"POST": scoped(200, roles=HEALTH, others=403)}, **FOR_PATIENT)
M["followups:patient"] = Entry({"GET": scoped(200, roles=HEALTH, others=403)}, **FOR_PATIENT)
FOLLOWUP = dict(kwargs={"pk": "followup"}, **PATIENT_PAGE)
M["followups:detail"] = Entry({"GET": scoped(200, roles=HEALTH, others=403)}, **FOLLOWUP)
M["followups:edit"] = Entry(
    {"GET": scoped(200, roles=HEALTH, others=403), "POST": scoped(200, roles=HEALTH, others=403)},
    **FOLLOWUP,
)
M["followups:print"] = Entry({"GET": scoped(200, roles=HEALTH, others=403)}, **FOLLOWUP)
M["followups:incident-list"] = Entry(
    {"GET": only(200, *HEALTH, "police_a", "governance")}, **PATIENT_PAGE
)
M["followups:incident-create"] = Entry(
    {"GET": only(200, "police_a"), "POST": only(200, "police_a")},
    body={"POST": {"q": "一"}},
    note="POST without a patient: the patient search (its term stays out of the URL)",
)

# follow-ups API --------------------------------------------------------------
M["followups-api:followup-list"] = Entry(
    {"GET": listing(roles=HEALTH, others=403), "POST": only(400, *HEALTH)},
    rows="followup",
    fields=fields(FOLLOWUP_KEYS, HEALTH_GROUP),
)
M["followups-api:followup-detail"] = Entry(
    {
        "GET": scoped(200, roles=HEALTH, others=403),
        "PATCH": scoped(428, roles=HEALTH, others=403),
    },
    kwargs={"id": "followup"},
    fields=fields(FOLLOWUP_KEYS, HEALTH_GROUP),
)

# alerts: the world's risk alerts go to the patient's township police station
# and governance office; of the personas only police_a (A1) is a recipient.
ALERT_SCOPE = {"police_a": (True, False, False)}
ALERT = {"kwargs": {"pk": "alert"}}
M["alerts:list"] = Entry({"GET": listing(roles=PERSONAS[:-1], scope=ALERT_SCOPE)}, rows="alert")
M["alerts:detail"] = Entry({"GET": scoped(200, roles=PERSONAS, scope=ALERT_SCOPE)}, **ALERT)
M["alerts:acknowledge"] = Entry({"POST": scoped(302, roles=PERSONAS, scope=ALERT_SCOPE)}, **ALERT)
M["alerts:resolve"] = Entry(
    {
        "GET": scoped(200, roles=PERSONAS, scope=ALERT_SCOPE),
        "POST": scoped(200, roles=PERSONAS, scope=ALERT_SCOPE),
    },
    **ALERT,
)
# the alerts' recipients: police stations and governance offices
ALERT_FIELDS = fields(ALERT_KEYS, "police", "governance")
M["followups-api:alert-list"] = Entry(
    {"GET": listing(roles=PERSONAS[:-1], scope=ALERT_SCOPE)}, rows="alert", fields=ALERT_FIELDS
)
ALERT_API = {"kwargs": {"id": "alert"}, "fields": ALERT_FIELDS}
M["followups-api:alert-detail"] = Entry(
    {"GET": scoped(200, roles=PERSONAS, scope=ALERT_SCOPE)}, **ALERT_API
)
M["followups-api:alert-acknowledge"] = Entry(
    {"POST": scoped(200, roles=PERSONAS, scope=ALERT_SCOPE)}, **ALERT_API
)
M["followups-api:alert-resolve"] = Entry(
    {"POST": scoped(200, roles=PERSONAS, scope=ALERT_SCOPE)},
    body={"POST": {"note": "矩阵：已上门核实"}},
    **ALERT_API,
)

# subsidies pages -------------------------------------------------------------
AWARD_SCOPE = {**TOWNSHIP_DOCTORS, "governance": (True, True, False), "civil": (True, True, False)}
AWARD_ROLES = tuple(AWARD_SCOPE)
AWARD = dict(kwargs={"pk": "award"}, **PATIENT_PAGE)
SETTLEMENT_ROLES = ("hospital", "civil", "dpf", "finance")
BATCH_ROLES = ("governance", "civil", "finance")
M["subsidies:home"] = Entry({"GET": only(200, *TOWNSHIP_DOCTORS, "governance", "civil", "finance")})
# the searches by a patient's name POST their term (no personal data in URLs);
# "一" is in every world patient's name
SEARCH_BODY = {"POST": {"q": "一"}}
M["subsidies:award-list"] = Entry(
    {
        "GET": listing(roles=AWARD_ROLES, scope=AWARD_SCOPE),
        "POST": listing(roles=AWARD_ROLES, scope=AWARD_SCOPE),
    },
    rows="award",
    body=SEARCH_BODY,
    **PATIENT_PAGE,
)
M["subsidies:award-candidates"] = Entry(
    {"GET": only(200, *AWARD_ROLES), "POST": only(200, *AWARD_ROLES)},
    body=SEARCH_BODY,
    **PATIENT_PAGE,
)
M["subsidies:award-apply"] = Entry(
    {
        "GET": scoped(200, roles=(*TOWNSHIP_DOCTORS, "governance"), scope=AWARD_SCOPE),
        "POST": scoped(200, roles=(*TOWNSHIP_DOCTORS, "governance"), scope=AWARD_SCOPE),
    },
    **FOR_PATIENT,
)
M["subsidies:award-detail"] = Entry(
    {"GET": scoped(200, roles=AWARD_ROLES, scope=AWARD_SCOPE)}, **AWARD
)
M["subsidies:award-review"] = Entry(
    {"POST": scoped(200, roles=("governance",), scope=COUNTY_A)}, **AWARD
)
for _name in (
    "award-approve",
    "award-objection",
    "award-yearly-review",
    "award-suspend",
    "award-end",
):
    M[f"subsidies:{_name}"] = Entry(
        {"POST": scoped(200, roles=("governance", "civil"), scope=COUNTY_A)}, **AWARD
    )
BATCH = {"kwargs": {"pk": "batch"}}
M["subsidies:batch-list"] = Entry({"GET": only(200, *BATCH_ROLES)})
M["subsidies:batch-draw"] = Entry({"POST": only(200, "governance", "civil")})
M["subsidies:batch-detail"] = Entry(
    {"GET": scoped(200, roles=BATCH_ROLES, scope=COUNTY_A)}, **BATCH
)
M["subsidies:batch-review"] = Entry(
    {"POST": scoped(302, roles=("governance", "civil"), scope=COUNTY_A)}, **BATCH
)
M["subsidies:batch-pay"] = Entry({"POST": scoped(200, roles=("finance",), scope=COUNTY_A)}, **BATCH)
M["subsidies:batch-export"] = export(scoped(200, roles=BATCH_ROLES, scope=COUNTY_A), **BATCH)
SETTLEMENT = dict(kwargs={"pk": "settlement"}, **PATIENT_PAGE)
M["subsidies:settlement-list"] = Entry(
    {"GET": override(listing(roles=SETTLEMENT_ROLES, scope=COUNTY_A), civil=Rows(), dpf=Rows())},
    rows="settlement",
    body={"GET": {"tab": "settlements"}},
    note="payers see the settlements they pay in (the world's patients are not poor: "
    "civil affairs and the federation pay nothing); the API lists the county's",
    **PATIENT_PAGE,
)
M["subsidies:settlement-detail"] = Entry(
    {"GET": scoped(200, roles=SETTLEMENT_ROLES, scope=COUNTY_A)}, **SETTLEMENT
)
M["subsidies:settlement-reverse"] = Entry(
    {"POST": scoped(200, roles=("hospital",), scope=COUNTY_A)}, **SETTLEMENT
)
M["subsidies:episode-new"] = Entry(
    {"GET": only(200, "hospital"), "POST": only(200, "hospital")}, body=SEARCH_BODY
)
M["subsidies:episode-admit"] = Entry(
    {
        "GET": scoped(200, roles=("hospital",), scope=COUNTY_A),
        "POST": scoped(200, roles=("hospital",), scope=COUNTY_A),
    },
    **FOR_PATIENT,
)
EPISODE = dict(kwargs={"pk": "episode"}, **PATIENT_PAGE)
M["subsidies:episode-detail"] = Entry(
    {"GET": scoped(200, roles=("hospital",), scope=COUNTY_A)}, **EPISODE
)
M["subsidies:episode-discharge"] = Entry(
    {
        "GET": scoped(200, roles=("hospital",), scope=COUNTY_A),
        "POST": scoped(200, roles=("hospital",), scope=COUNTY_A),
    },
    **EPISODE,
)
M["subsidies:episode-settle"] = Entry(
    {
        "GET": scoped(302, roles=("hospital",), scope=COUNTY_A),
        "POST": scoped(302, roles=("hospital",), scope=COUNTY_A),
    },
    note="an episode still in hospital is sent back to its page",
    **EPISODE,
)
M["subsidies:statement"] = Entry({"GET": only(200, *SETTLEMENT_ROLES)})
M["subsidies:statement-export"] = export(only(200, *SETTLEMENT_ROLES))

# subsidies API ---------------------------------------------------------------
M["subsidies-api:settlement-list"] = Entry(
    {"GET": listing(roles=SETTLEMENT_ROLES, scope=COUNTY_A), "POST": only(400, "hospital")},
    rows="settlement",
    fields=SETTLEMENT_FIELDS,
)
M["subsidies-api:settlement-quote"] = Entry({"POST": only(400, "hospital")})
M["subsidies-api:settlement-detail"] = Entry(
    {"GET": scoped(200, roles=SETTLEMENT_ROLES, scope=COUNTY_A)},
    kwargs={"pk": "settlement"},
    fields=SETTLEMENT_FIELDS,
)
M["subsidies-api:reward-award-list"] = Entry(
    {"GET": listing(roles=AWARD_ROLES, scope=AWARD_SCOPE)},
    rows="award",
    fields=fields(AWARD_KEYS, *AWARD_GROUPS),
)
M["subsidies-api:reward-award-detail"] = Entry(
    {"GET": scoped(200, roles=AWARD_ROLES, scope=AWARD_SCOPE)},
    kwargs={"pk": "award"},
    fields=fields(AWARD_KEYS | {"events"}, *AWARD_GROUPS),
)
M["subsidies-api:reward-batch-list"] = Entry({"GET": only(200, *BATCH_ROLES)})
M["subsidies-api:reward-batch-detail"] = Entry(
    {"GET": scoped(200, roles=BATCH_ROLES, scope=COUNTY_A)},
    kwargs={"pk": "batch"},
    fields=fields(BATCH_KEYS, "governance", "civil_affairs", "finance"),
)

# referrals pages -------------------------------------------------------------
# The referral objects (referrals, clues, rehab institutions and enrolments,
# imports, partners, runs, reconciliations, tasks) are not built by this
# matrix yet: their routes get an id that exists nowhere, which checks the
# role gate and "missing → 404", not the scope (see docs/reliability.md).
MISSING = "not built yet: a missing id at every position (role gate and 404 only)"
REFERRERS = (*HEALTH, "civil", "dpf")
CLUE_ROLES = (*HEALTH, "police_a", "governance", "civil", "dpf")
EXCHANGE_ROLES = (*CLUE_ROLES, "admin")
MISSING_404 = scoped(404, roles=PERSONAS, scope={})


def missing(kind: str, **kwargs) -> dict:
    return {"kwargs": dict.fromkeys(kwargs or {"pk": None}, kind), "note": MISSING}


U, N = "missing_uuid", "missing_int"
M["referrals:inbox"] = Entry({"GET": only(200, *REFERRERS)})
M["referrals:create"] = Entry(
    {"GET": only(200, *HEALTH), "POST": only(200, *HEALTH)},
    body={"POST": {"kind": "upward", "q": "一"}},
    note="POST without a patient: the patient search (its term stays out of the URL)",
)
# referrals: upward, each township doctor → the county's specialist hospital;
# seen by the sender and the receiver only
REFERRAL_SCOPE = {**TOWNSHIP_DOCTORS, "hospital": (True, True, False)}
REFERRAL = {"kwargs": {"pk": "referral"}, **PATIENT_PAGE}


def _referral(ok_sender, ok_receiver, *, others=404) -> dict:
    """The sender's and the receiver's answers in scope, 404 out of it."""
    base = scoped(ok_receiver, roles=tuple(REFERRAL_SCOPE), scope=REFERRAL_SCOPE, others=others)
    for doctor, in_scope in TOWNSHIP_DOCTORS.items():
        base[doctor] = tuple(ok_sender if s else 404 for s in in_scope)
    return base


M["referrals:detail"] = Entry({"GET": _referral(200, 200)}, **REFERRAL)
for _name in ("accept", "reject", "complete"):
    M[f"referrals:{_name}"] = Entry(
        {"POST": _referral(403, 302)}, note="only the receiving hospital", **REFERRAL
    )
M["referrals:cancel"] = Entry({"POST": _referral(302, 403)}, note="only the sender", **REFERRAL)
M["referrals:rehab-list"] = Entry({"GET": only(200, *REFERRERS)})
M["referrals:rehab-create"] = Entry(
    {"GET": only(200, "hospital", "civil", "dpf"), "POST": only(200, "hospital", "civil", "dpf")}
)
M["referrals:rehab-detail"] = Entry({"GET": MISSING_404}, **missing(N))
for _name in ("rehab-edit", "rehab-enrol", "rehab-session-create"):
    M[f"referrals:{_name}"] = Entry({"GET": MISSING_404, "POST": MISSING_404}, **missing(N))
M["referrals:rehab-enrolment-end"] = Entry({"POST": MISSING_404}, **missing(U))
M["referrals:rehab-green-channel"] = Entry({"GET": MISSING_404, "POST": MISSING_404}, **missing(U))
M["referrals:clue-list"] = Entry({"GET": only(200, *CLUE_ROLES)})
M["referrals:clue-create"] = Entry({"GET": only(200, *CLUE_ROLES), "POST": only(200, *CLUE_ROLES)})
M["referrals:clue-detail"] = Entry({"GET": MISSING_404}, **missing(U))
M["referrals:clue-confirm"] = Entry({"GET": MISSING_404, "POST": MISSING_404}, **missing(U))
M["referrals:clue-close"] = Entry({"POST": MISSING_404}, **missing(U))
M["referrals:import-home"] = Entry({"GET": only(200, *HEALTH), "POST": only(200, *HEALTH)})
M["referrals:import-template"] = Entry({"GET": only(200, *HEALTH)})
M["referrals:import-detail"] = Entry({"GET": MISSING_404}, **missing(U))
M["referrals:exchange-home"] = Entry({"GET": only(200, *EXCHANGE_ROLES)})
M["referrals:partner-create"] = Entry({"GET": only(200, "admin"), "POST": only(200, "admin")})
M["referrals:partner-detail"] = Entry({"GET": MISSING_404}, **missing(N))
M["referrals:partner-edit"] = Entry({"GET": MISSING_404, "POST": MISSING_404}, **missing(N))
for _name in ("partner-key", "partner-build"):
    M[f"referrals:{_name}"] = Entry({"POST": MISSING_404}, **missing(N))
# exchange runs: own = county A's police package (received by the county
# police bureau), other = county A's governance package (received by the
# county governance office), county = county C's police package
_RUN = {"kwargs": {"pk": "exchange_run"}}
_RUN_SEEN = {
    "hospital": (True, True, False),
    "police_a": (True, False, False),
    "governance": (True, True, False),
    "admin": (True, True, False),
}
M["referrals:run-detail"] = Entry(
    {"GET": scoped(200, roles=tuple(_RUN_SEEN), scope=_RUN_SEEN, others=404)}, **_RUN
)
M["referrals:run-download"] = export(
    override(
        scoped(403, roles=tuple(_RUN_SEEN), scope=_RUN_SEEN, others=404),
        # a township police station may not take the county's package
        police_a=(403, 404, 404),
        # the county governance office receives the governance package
        governance=(403, 200, 404),
    ),
    **_RUN,
)
M["referrals:run-redeliver"] = Entry({"POST": MISSING_404}, **missing(U))
M["referrals:reconciliation-create"] = Entry(
    {"GET": only(200, *CLUE_ROLES), "POST": only(200, *CLUE_ROLES)}
)
M["referrals:reconciliation-detail"] = Entry({"GET": MISSING_404}, **missing(U))
M["referrals:reconciliation-review"] = Entry(
    {"POST": MISSING_404}, kwargs={"pk": U, "item_pk": N}, note=MISSING
)
M["referrals:reconciliation-high-risk"] = export(MISSING_404, **missing(U))
M["referrals:task-list"] = Entry({"GET": only(200, *EXCHANGE_ROLES)})
M["referrals:task-resolve"] = Entry(
    {"POST": scoped(404, roles=EXCHANGE_ROLES, scope=ALL, others=403)}, **missing(U)
)

# referrals API ---------------------------------------------------------------
M["referrals-api:referral-list"] = Entry(
    {"GET": only(200, *REFERRERS), "POST": only(400, *REFERRERS)}
)
# civil affairs and the federation may use the referral API, but none of
# these referrals is theirs: 404; the other departments may not (403)
REFERRAL_API = {"kwargs": {"pk": "referral"}}
API_OTHERS = dict.fromkeys(("civil", "dpf"), (404,) * 3)
M["referrals-api:referral-detail"] = Entry(
    {"GET": override(_referral(200, 200, others=403), **API_OTHERS)},
    fields=fields(REFERRAL_KEYS, HEALTH_GROUP),
    **REFERRAL_API,
)
for _name, _sender, _receiver in (
    ("accept", 403, 200),
    ("complete", 403, 400),  # not accepted yet
    ("cancel", 400, 400),  # no reason given (checked before the role)
    ("reject", 400, 400),  # no reason given
):
    M[f"referrals-api:referral-{_name}"] = Entry(
        {"POST": override(_referral(_sender, _receiver, others=403), **API_OTHERS)},
        **REFERRAL_API,
    )
M["referrals-api:clue-list"] = Entry(
    {"GET": only(200, *CLUE_ROLES), "POST": only(400, *CLUE_ROLES)}
)
M["referrals-api:clue-detail"] = Entry(
    {"GET": scoped(404, roles=CLUE_ROLES, scope={})}, **missing(U)
)
for _name in ("close", "confirm"):
    M[f"referrals-api:clue-{_name}"] = Entry(
        {"POST": scoped(404, roles=CLUE_ROLES, scope=ALL)}, **missing(U)
    )
M["referrals-api:exchange-run-list"] = Entry({"GET": only(200, *EXCHANGE_ROLES)})
M["referrals-api:exchange-run-detail"] = Entry(
    {
        "GET": override(
            scoped(404, roles=EXCHANGE_ROLES, scope={}),
            **{
                persona: tuple(200 if s else 404 for s in seen)
                for persona, seen in _RUN_SEEN.items()
            },
        )
    },
    fields=fields(RUN_KEYS, HEALTH_GROUP, "police", "governance", "admin"),
    **_RUN,
)
M["referrals-api:reconciliation-list"] = Entry(
    {"GET": only(200, *CLUE_ROLES), "POST": only(400, *CLUE_ROLES)}
)
for _name in ("reconciliation-detail", "reconciliation-items"):
    M[f"referrals-api:{_name}"] = Entry(
        {"GET": scoped(404, roles=CLUE_ROLES, scope={})}, **missing(U)
    )

# reports ---------------------------------------------------------------------
AGGREGATES = (*HEALTH, "governance", "civil", "dpf", "finance", "official")
M["reports:dashboard"] = Entry(
    {"GET": only(200, *AGGREGATES, others=404)},
    note="no region with aggregates in scope answers 404; civil affairs and the "
    "federation see their county's counts through their patient scope",
)
M["reports:targets"] = Entry(
    {"GET": only(200, "official", "admin"), "POST": only(200, "official", "admin")},
    note="officials (their area) and the system administrator set targets; an "
    "empty form comes back with its errors",
)
M["reports:patients"] = Entry(
    {"GET": only(200, "doctor_a", "hospital", others=404)},
    body={"GET": {"region": "990102001", "indicator": "risk_0"}},
    note="the patients behind a number of township A1: health staff with A1 in scope",
)
M["reports:export-indicators"] = export(only(200, *AGGREGATES, others=404))
M["reports:export-exchange"] = export(only(200, *AGGREGATES, others=404))
M["reports-api:indicators"] = Entry(
    {"GET": only(200, *AGGREGATES, others=404)},
    fields=fields(
        INDICATOR_KEYS,
        HEALTH_GROUP,
        "governance",
        "civil_affairs",
        "disabled_federation",
        "finance",
        "official",
    ),
)

# audit -----------------------------------------------------------------------
M["audit:event-list"] = Entry({"GET": only(200, "audit_admin")})
M["audit:unusual-list"] = Entry({"GET": only(200, "audit_admin", "security_admin")})
M["audit:breakglass-list"] = Entry({"GET": only(200, "audit_admin")})
M["audit:breakglass-review"] = Entry(
    {"POST": scoped(302, roles=("audit_admin",), scope=COUNTY_A)},
    kwargs={"pk": "breakglass"},
    note="grants of requesters in the audit admin's county",
)
M["audit:patient-access"] = Entry(
    {"GET": scoped(200, roles=HEALTH, others=404)},
    note="the read log of one patient: health staff within scope only",
    **PATIENT,
)

# Django admin: one group for every generated route (its own login and
# is_staff/model permissions); checked on its index, which must offer the
# admin no patient, follow-up or audit model (DESIGN.md: admin "cannot read
# clinical records merely by being admin").
M["admin:*"] = Entry(
    {"GET": cells(302, anonymous=302, admin=200)},
    note="only the admin role is staff; the others are sent to the admin login",
)
