"""What each department sees of a patient (DESIGN.md → Permissions).

One definition used by pages, the API and exports. Keys not in a set are
absent from that department's payloads, not blanked. ``id_number`` appears
in full only for health; others get ``id_number`` masked (see ``MASKED``).
"""

from __future__ import annotations

IDENTITY = (
    "id",
    "name",
    "gender",
    "birth_date",
    "id_type",
    "id_number",
    "region",
    "address",
    "phone",
    "status",
)
GUARDIANS = ("guardian", "assistant_guardians")
# The latest follow-up as the departments that act on risk see it (police,
# governance). DOMAIN.md → Data exchange gives them "identity, address,
# guardian, status, risk level, classification, lost, incidents": the
# classification (unstable / basically stable / stable) says how closely
# health follows the patient, not why — no diagnosis, symptom, medication
# or note — so it is here, not in CLINICAL. ``next_followup_due`` and
# ``overdue`` are not in DOMAIN.md's list; they are shown because police and
# the grid worker help health reach overdue and lost patients (the care
# team, 九管一; lost alerts go to both), and they carry no clinical content.
LATEST_RISK = (
    "risk_level",
    "classification",
    "next_followup_due",
    "overdue",
    "police_registered",
)
# Health only (DESIGN.md → Permissions: never diagnosis details, medication
# or clinical notes outside health).
CLINICAL = (
    "diagnosis",
    "diagnosis_hospital",
    "diagnosis_date",
    "last_followup_date",
    "in_hospital",
)
SUPPLEMENT = (
    "household_region",
    "household_address",
    "ethnicity",
    "village_contact_name",
    "village_contact_phone",
    "household_type",
    "employment",
    "consent",
    "consent_signer",
    "consent_date",
    "first_onset_date",
    "first_onset_precision",
    "past_symptoms",
    "past_symptoms_other",
    "past_lock_status",
    "past_outpatient",
    "first_antipsychotic_date",
    "first_antipsychotic_precision",
    "past_admissions",
    "recent_treatment_effect",
    "dangerous_history",
    "economic_status",
    "specialist_opinion",
    "supplement_filled_on",
)
POVERTY = ("poverty", "insurance", "union_member")
DISABILITY = ("certificate", "certificate_grade", "certificate_number")
REHAB = ("in_community_rehab",)
MANAGEMENT = ("registered_on", "managing_organisation", "status_changed_at", "version")

FIELDSETS: dict[str, tuple[str, ...]] = {
    "health": IDENTITY
    + GUARDIANS
    + LATEST_RISK
    + CLINICAL
    + SUPPLEMENT
    + POVERTY
    + DISABILITY
    + REHAB
    + MANAGEMENT
    + ("care_team",),
    # identity, address, guardian, status, risk level and classification (+
    # incidents and alerts through their own endpoints): DOMAIN.md → Data
    # exchange; never diagnosis, medication or clinical notes (CLINICAL)
    "police": IDENTITY + GUARDIANS + LATEST_RISK + ("version",),
    "governance": IDENTITY + GUARDIANS + LATEST_RISK + ("care_team", "version"),
    "civil_affairs": IDENTITY + ("guardian",) + POVERTY + REHAB + ("version",),
    "disabled_federation": IDENTITY + ("guardian",) + DISABILITY + REHAB + ("version",),
}

# Facts outside the patient record that a department's exchange package
# carries (DOMAIN.md → Data exchange): police and governance get the
# incidents (which they see through their own endpoints), civil affairs
# whether the guardian receives the guardian reward. With ``FIELDSETS``,
# this bounds the columns of ``referrals.rules.PARTNER_COLUMNS``.
EXCHANGE_EXTRAS: dict[str, tuple[str, ...]] = {
    "police": ("incidents",),
    "governance": ("incidents",),
    "civil_affairs": ("guardian_reward",),
    "disabled_federation": (),
}


def exchange_fields(department: str) -> frozenset[str]:
    """What may leave the register for ``department`` in an exchange
    package: its field set plus its ``EXCHANGE_EXTRAS`` (nothing for an
    unknown department)."""
    return frozenset(FIELDSETS.get(department, ()) + EXCHANGE_EXTRAS.get(department, ()))


# Departments that see the full ID number in lists; all others see it masked
# (revealing the full number is a logged action).
FULL_ID_FIELDSETS = frozenset({"health"})

# Fields anyone with patients in scope may filter the list by.
FILTERABLE = {
    "health": ("region", "status", "diagnosis", "risk_level", "overdue"),
    "police": ("region", "status", "risk_level"),
    "governance": ("region", "status", "risk_level", "overdue"),
    "civil_affairs": ("region", "status"),
    "disabled_federation": ("region", "status"),
}

# Fields each department may write through the register/edit form and API.
WRITABLE: dict[str, tuple[str, ...]] = {
    "health": tuple(
        f
        for f in FIELDSETS["health"]
        if f
        not in {
            "id",
            "status",
            "risk_level",
            "next_followup_due",
            "overdue",
            "classification",
            "last_followup_date",
            "in_hospital",
            "managing_organisation",
            "status_changed_at",
            "version",
            "care_team",
            "in_community_rehab",
        }
    ),
    "police": ("police_registered",),
    "civil_affairs": ("poverty",),
    "disabled_federation": ("certificate", "certificate_grade", "certificate_number"),
    "governance": (),
}


def fields_for(fieldset: str | None) -> tuple[str, ...]:
    return FIELDSETS.get(fieldset or "", ())


def sees(fieldset: str | None, field: str) -> bool:
    return field in fields_for(fieldset)
