"""Builders for regions, organisations and staff (through the services)."""

from __future__ import annotations

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.services import staff_create

PASSWORD = "Test-Pass-2026!"

KIND_DEPARTMENT = {
    OrganisationKind.HEALTH_CENTRE: "health",
    OrganisationKind.SPECIALIST_HOSPITAL: "health",
    OrganisationKind.PREVENTION_AGENCY: "health",
    OrganisationKind.HEALTH_BUREAU: "health",
    OrganisationKind.POLICE_STATION: "police",
    OrganisationKind.POLICE_BUREAU: "police",
    OrganisationKind.GOVERNANCE_OFFICE: "governance",
    OrganisationKind.CIVIL_AFFAIRS_BUREAU: "civil_affairs",
    OrganisationKind.FEDERATION: "disabled_federation",
    OrganisationKind.FINANCE_BUREAU: "finance",
    OrganisationKind.REHAB_INSTITUTION: "health",
}


def region(code: str, name: str, level: str, parent: Region | None = None, population=None):
    obj, _ = Region.objects.get_or_create(
        code=code,
        defaults={"name": name, "level": level, "parent": parent, "population": population},
    )
    return obj


def organisation(name: str, kind: str, region_obj: Region) -> Organisation:
    obj, _ = Organisation.objects.get_or_create(
        region=region_obj,
        name=name,
        defaults={"kind": kind, "department": KIND_DEPARTMENT[kind]},
    )
    return obj


def staff(username: str, role: str, org: Organisation, password: str = PASSWORD):
    return staff_create(
        username=username,
        password=password,
        organisation=org,
        role=role,
        display_name=username,
        validate=False,
    )


def county_tree(county_code: str = "990102", townships: int = 2, villages: int = 2):
    """Province → city → county → townships → villages, codes as in the demo."""
    province = region(county_code[:2] + "0000", "省", RegionLevel.PROVINCE)
    city = region(county_code[:4] + "00", "市", RegionLevel.CITY, province)
    county = region(county_code, f"县{county_code}", RegionLevel.COUNTY, city, 300000)
    towns = []
    for t in range(1, townships + 1):
        town = region(f"{county_code}{t:03d}", f"镇{t}", RegionLevel.TOWNSHIP, county, 100000)
        for v in range(1, villages + 1):
            region(f"{town.code}{v:03d}", f"村{t}-{v}", RegionLevel.VILLAGE, town, 50000)
        towns.append(town)
    return county, towns


def otp_device(user):
    """A confirmed TOTP device of ``user`` (created once)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    return device


def otp_code(device) -> str:
    """The device's current TOTP code (honours time-machine's clock)."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def login(client, user):
    """``client.force_login`` plus the second factor when the user needs one
    (the 三员 roles always do): the session is as after a full sign-in."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts.mfa import mfa_required_for

    client.force_login(user)
    if mfa_required_for(user):
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = otp_device(user).persistent_id
        session.save()
    return client


def api_key(name: str, org: Organisation, role: str, custodian, *, by=None):
    """A collected partner key (request → approval → collection, by the
    system itself unless ``by`` names the requesting security admin).
    Returns (ApiKey, key)."""
    from accounts.services import apikey_approve, apikey_collect, apikey_request

    requested = apikey_request(name=name, organisation=org, role=role, custodian=custodian, by=by)
    apikey_approve(api_key=requested, by=None)
    return apikey_collect(api_key=requested, by=custodian)


EXPORT_REASON = "季度工作核查"


def grant_export(*users):
    """Give ``users`` the export permission (accounts.exports; in the app the
    system admin grants it on the staff page). Returns the first user,
    reloaded so its permission cache is fresh."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    perm = Permission.objects.get(content_type__app_label="accounts", codename="export_data")
    for user in users:
        user.user_permissions.add(perm)
        for cache in ("_perm_cache", "_user_perm_cache"):
            user.__dict__.pop(cache, None)
    return get_user_model().objects.get(pk=users[0].pk) if users else None


def export(client, url, data=None, *, reason=EXPORT_REASON):
    """Ask for an export page's file: POST the reason to the URL (its query
    string keeps the filters)."""
    from urllib.parse import urlencode

    if data:
        url = f"{url}?{urlencode(data)}"
    return client.post(url, {"reason": reason})
