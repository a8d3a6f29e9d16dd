"""Writes of staff accounts, scope grants and security settings.

Every change records who made it: a history row on the staff profile
(django-simple-history, with a reason code) and an audit row. Changes that
alter what a user may do end the user's other sessions (``session_epoch``)
and delete their API tokens (SECURITY.md G11, A9).

Capabilities are checked here, not only in views (三员, SECURITY.md G4):
the system admin manages accounts, the security admin manages lockouts and
second factors and requests partner keys (which the system admin approves
and the key's custodian, never a 三员, collects), the audit admin reviews.
``by=None`` is the system itself (seed_demo, create_admin, factories).

Two-person rule: what could let the system admin sign in as somebody else
or widen an account's reach — creating an account, changing its role or
organisation, resetting its password — is only *requested* by the system
admin (``account_request_*``) and takes effect when a security admin
authorises it. The initial password of a new account or a reset is
generated in two halves, one shown to each of the two, so neither alone can
sign in with it; the person must choose their own at the first sign-in.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm
from rest_framework.authtoken.models import Token

from accounts.authentication import hash_key
from accounts.models import (
    AccountRequest,
    AccountRequestKind,
    AccountRequestStatus,
    ApiKey,
    ApiKeyStatus,
    BreakGlassGrant,
    Organisation,
    PasswordHistory,
    StaffProfile,
)
from accounts.roles import ROLE_INFO, Role, fieldset_of, role_of
from accounts.scoping import forget_scope
from accounts.selectors import admin_region, breakglass_search_path
from audit.services import audit_record
from core.crypto import blind_index
from core.errors import DomainError
from core.history import history_stamp

ERR_ROLE_DEPARTMENT = _("该角色不能设在此部门的机构中。")
ERR_USERNAME_TAKEN = _("该用户名已被使用。")
ERR_ONE_ROLE = _("每个账号只能有一个角色；如需调整，请修改该账号的角色。")
ERR_NOT_ALLOWED = _("您的角色不能进行此操作。")
ERR_SELF = _("不能对自己的账号进行此操作，请由另一名管理员办理。")
ERR_ORGANISATION_SCOPE = _("该机构不在您的管理范围内。")
ERR_API_ROLE = _("接口密钥不能使用管理类角色。")
ERR_API_CUSTODIAN = _(
    "领取人须是该机构中担任该角色、在用的个人账号（不能是管理类账号或服务账号）。"
)
ERR_API_STATUS = _("该接口密钥当前的状态不能进行此操作。")
ERR_BREAKGLASS_ROLE = _("只有卫生健康人员可以申请紧急访问。")
ERR_BREAKGLASS_NOT_FOUND = _("本县（区）患者登记中未找到该证件号码。")
ERR_REASON_SHORT = _("请写明理由（至少10个字）。")
ERR_NEEDS_AUTHORISATION = _("此项变更须提交申请，经安全管理员授权后生效。")
ERR_REQUEST_PENDING = _("该账号已有一项待授权的申请，请等待安全管理员处理。")
ERR_REQUEST_STATUS = _("该申请已处理，不能再次处理。")
ERR_REQUEST_OWN = _("不能处理自己提交的申请，须由另一名安全管理员授权。")
ERR_REJECT_REASON = _("请写明驳回理由。")
ERR_SERVICE_ACCOUNT = _("接口密钥的服务账号没有密码，不能重置。")

REASON_MIN_LENGTH = 10
EXPORT_PERMISSION = ("accounts", "export_data")
API_USERNAME_PREFIX = "api-"


# --- groups -----------------------------------------------------------------


def role_group(role: str) -> Group:
    group, _created = Group.objects.get_or_create(name=role)
    return group


def scope_group(*, organisation: Organisation, role: str) -> Group:
    """The group of one role in one organisation, holding its region grants."""
    name = f"scope:{organisation.pk}:{role}"
    group, created = Group.objects.get_or_create(name=name)
    if created:
        for perm in ROLE_INFO[role].scope_perms:
            assign_perm(perm, group, organisation.region)
    return group


def _check_role_fits(role: str, organisation: Organisation) -> None:
    info = ROLE_INFO[Role(role)]
    if info.department is not None and info.department != organisation.department:
        raise DomainError(ERR_ROLE_DEPARTMENT, field="role")


def _set_groups(user, *, organisation: Organisation, role: str) -> None:
    """Exactly one role group and one scope group (the rest are removed)."""
    keep = [role_group(role), scope_group(organisation=organisation, role=role)]
    user.groups.set(keep)
    forget_scope(user)


# --- capability checks --------------------------------------------------------


def _require_role(by, *roles: str) -> None:
    if by is None:  # the system itself: seed_demo, data migrations, factories
        return
    if role_of(by) not in roles:
        raise DomainError(ERR_NOT_ALLOWED)


def _require_system(by, *roles: str) -> None:
    """Done directly only by the system itself (``by=None``); a person of
    ``roles`` asks for it through an ``account_request_*`` instead."""
    _require_role(by, *roles)
    if by is not None:
        raise DomainError(ERR_NEEDS_AUTHORISATION)


def _require_not_self(by, user) -> None:
    if by is not None and by.pk == user.pk:
        raise DomainError(ERR_SELF)


def _require_in_scope(by, organisation: Organisation) -> None:
    """An admin manages the organisations inside their own organisation's region."""
    if by is None:
        return
    region = admin_region(by)
    if region is None or not organisation.region.path.startswith(region.path):
        raise DomainError(ERR_ORGANISATION_SCOPE, field="organisation")


def _profile_for_update(user) -> StaffProfile:
    return StaffProfile.objects.select_for_update().get(user=user)


def _end_sessions(profile: StaffProfile) -> None:
    """Other sessions of the user end on their next request; API tokens go."""
    profile.session_epoch += 1
    Token.objects.filter(user_id=profile.user_id).delete()


def _record_password(user) -> None:
    """Keep the hash of the password just set; only the last few matter."""
    PasswordHistory.objects.create(user=user, password=user.password)
    keep = settings.PASSWORD_HISTORY_COUNT
    old = PasswordHistory.objects.filter(user=user).order_by("-created_at", "-id")[keep:]
    PasswordHistory.objects.filter(pk__in=list(old.values_list("pk", flat=True))).delete()


# --- staff accounts -----------------------------------------------------------


@transaction.atomic
def staff_create(
    *,
    username: str,
    password: str | None,
    organisation: Organisation,
    role: str,
    display_name: str = "",
    phone: str = "",
    by=None,
    validate: bool = True,
    must_change_password: bool = False,
):
    """Create an active account in one organisation with one role: the
    system itself (seed_demo, create_admin, service accounts of API keys).
    The system admin asks for a new account with ``account_request_create``.

    ``password=None`` gives an account that cannot sign in with a password
    (the service account of an API key). Raises DomainError or
    ValidationError (password rules).
    """
    _require_system(by, Role.ADMIN)
    return _create_account(
        username=username,
        password=password,
        organisation=organisation,
        role=role,
        display_name=display_name,
        phone=phone,
        validate=validate,
        must_change_password=must_change_password,
    )


def _create_account(
    *,
    username: str,
    password: str | None,
    organisation: Organisation,
    role: str,
    display_name: str = "",
    phone: str = "",
    validate: bool = True,
    must_change_password: bool = False,
    by=None,
    authorised: AccountRequest | None = None,
):
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise DomainError(ERR_USERNAME_TAKEN, field="username")
    _check_role_fits(role, organisation)
    _require_in_scope(by, organisation)
    # Django admin (technical settings, policies) is for the admin role only;
    # it opens no patient data (DESIGN.md → admin).
    user = User(username=username, is_active=True, is_staff=role == Role.ADMIN)
    if password is None:
        user.set_unusable_password()
    else:
        if validate:
            validate_password(password, user)
        user.set_password(password)
    user.save()
    if password is not None:
        _record_password(user)
    profile = StaffProfile(
        user=user,
        organisation=organisation,
        display_name=display_name,
        phone=phone,
        password_changed_at=timezone.now(),
        must_change_password=must_change_password,
    )
    profile.full_clean(exclude=["user"])
    history_stamp(
        profile, user=authorised.requested_by if authorised else by, reason="staff.created"
    )
    profile.save()
    _set_groups(user, organisation=organisation, role=role)
    audit_record(
        actor=by,
        action="admin.staff_create",
        object_type="user",
        object_id=user.pk,
        detail={"role": role, "organisation": organisation.pk, **_authorised_detail(authorised)},
    )
    return user


def _authorised_detail(authorised: AccountRequest | None) -> dict:
    """What an audit row of an authorised change says about its request."""
    if authorised is None:
        return {}
    return {"request": authorised.pk, "requested_by": authorised.requested_by_id}


@transaction.atomic
def staff_change(*, user, organisation: Organisation, role: str, by):
    """Change a staff member's role and/or organisation; their sessions end.
    The system itself; the system admin asks with ``account_request_change``."""
    _require_system(by, Role.ADMIN)
    return _change_account(user=user, organisation=organisation, role=role)


def _change_account(*, user, organisation: Organisation, role: str, by=None, authorised=None):
    _require_not_self(by, user)
    _check_role_fits(role, organisation)
    _require_in_scope(by, organisation)
    profile = _profile_for_update(user)
    previous = {"role": role_of(user), "organisation": profile.organisation_id}
    profile.organisation = organisation
    _end_sessions(profile)
    history_stamp(
        profile, user=authorised.requested_by if authorised else by, reason="staff.changed"
    )
    profile.save(update_fields=["organisation", "session_epoch"])
    _set_groups(user, organisation=organisation, role=role)
    if user.is_staff != (role == Role.ADMIN):
        user.is_staff = role == Role.ADMIN
        user.save(update_fields=["is_staff"])
    audit_record(
        actor=by,
        action="admin.staff_change",
        object_type="user",
        object_id=user.pk,
        detail={
            "role": role,
            "organisation": organisation.pk,
            "previous": previous,
            **_authorised_detail(authorised),
        },
    )
    return user


@transaction.atomic
def staff_role_add(*, user, role: str, by):
    """Give a role to an account that has none. A user holds exactly one
    role (三员 separation, G4): adding a second one is refused; use
    ``staff_change`` to replace it."""
    _require_role(by, Role.ADMIN)
    if role_of(user) is not None or user.groups.filter(name__in=list(ROLE_INFO)).exists():
        raise DomainError(ERR_ONE_ROLE, field="role")
    _require_system(by, Role.ADMIN)
    profile = _profile_for_update(user)
    return staff_change(user=user, organisation=profile.organisation, role=role, by=by)


@transaction.atomic
def staff_deactivate(*, user, by):
    """Disable the account; its sessions end on their next request."""
    _require_role(by, Role.ADMIN)
    _require_not_self(by, user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    profile = _profile_for_update(user)
    _end_sessions(profile)
    history_stamp(profile, user=by, reason="staff.deactivated")
    profile.save(update_fields=["session_epoch"])
    audit_record(actor=by, action="admin.staff_deactivate", object_type="user", object_id=user.pk)
    return user


@transaction.atomic
def staff_reactivate(*, user, by):
    _require_role(by, Role.ADMIN)
    _require_not_self(by, user)
    user.is_active = True
    user.save(update_fields=["is_active"])
    profile = _profile_for_update(user)
    history_stamp(profile, user=by, reason="staff.reactivated")
    profile.save(update_fields=["session_epoch"])
    audit_record(actor=by, action="admin.staff_reactivate", object_type="user", object_id=user.pk)
    return user


@transaction.atomic
def staff_set_password(*, user, password: str, by, validate: bool = True, temporary: bool = False):
    """Set a new password; the user's other sessions end.

    Changed by the user themselves, or set by the system with
    ``temporary=True``: then the user must choose their own at the next
    login (the system admin asks with ``account_request_password_reset``).
    Raises ValidationError when the password breaks the rules (length,
    classes, common list, the last five).
    """
    own = by is not None and by.pk == user.pk
    if not own:
        _require_system(by, Role.ADMIN)
    elif temporary:
        raise DomainError(ERR_SELF)
    return _set_password(
        user=user, password=password, by=by, validate=validate, temporary=temporary
    )


def _set_password(*, user, password: str, by, validate=True, temporary=False, authorised=None):
    own = by is not None and by.pk == user.pk
    if validate:
        validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    _record_password(user)
    profile = StaffProfile.objects.select_for_update().filter(user=user).first()
    if profile is not None:  # a bare superuser (Django admin only) has none
        profile.password_changed_at = timezone.now()
        profile.must_change_password = temporary
        _end_sessions(profile)
        history_stamp(
            profile,
            user=authorised.requested_by if authorised else by,
            reason="staff.password_changed" if own else "staff.password_reset",
        )
        profile.save(update_fields=["password_changed_at", "must_change_password", "session_epoch"])
    audit_record(
        actor=by,
        action="auth.password_change" if own else "admin.password_reset",
        object_type="user",
        object_id=user.pk,
        detail=_authorised_detail(authorised) or None,
    )
    return user


@transaction.atomic
def staff_set_export(*, user, allowed: bool, by):
    """Grant or withdraw the export permission (accounts.exports)."""
    _require_role(by, Role.ADMIN)
    _require_not_self(by, user)
    app_label, codename = EXPORT_PERMISSION
    perm = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    if allowed:
        user.user_permissions.add(perm)
    else:
        user.user_permissions.remove(perm)
    for cache in ("_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)
    audit_record(
        actor=by,
        action="admin.export_grant" if allowed else "admin.export_revoke",
        object_type="user",
        object_id=user.pk,
    )
    return user


# --- two-person rule: the system admin asks, a security admin authorises -----------

# Letters and digits that cannot be misread when a half is read out or copied
# by hand (no 0/O, 1/l/I).
_HALF_ALPHABETS = ("ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789")
HALF_LENGTH = 8


def password_half() -> str:
    """One half of an initial password: upper and lower case letters and
    digits, so that two halves make a 16-character password of three classes."""
    chars = [secrets.choice(alphabet) for alphabet in _HALF_ALPHABETS]
    pool = "".join(_HALF_ALPHABETS)
    chars += [secrets.choice(pool) for _i in range(HALF_LENGTH - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _check_no_pending(*, user=None, username: str = "") -> None:
    pending = AccountRequest.objects.filter(status=AccountRequestStatus.PENDING)
    if user is not None and pending.filter(user=user).exists():
        raise DomainError(ERR_REQUEST_PENDING)
    if username and pending.filter(kind=AccountRequestKind.CREATE, username=username).exists():
        raise DomainError(ERR_USERNAME_TAKEN, field="username")


def _audit_request(req: AccountRequest, action: str, by) -> None:
    detail = {"kind": req.kind, "username": req.username}
    if req.kind != AccountRequestKind.PASSWORD_RESET:
        detail.update(role=req.role, organisation=req.organisation_id)
    if req.user_id:
        detail["user"] = req.user_id
    audit_record(
        actor=by, action=action, object_type="account_request", object_id=req.pk, detail=detail
    )


@transaction.atomic
def account_request_create(
    *, username: str, organisation: Organisation, role: str, display_name: str = "", phone="", by
) -> tuple[AccountRequest, str]:
    """The system admin asks for a new account. Nothing exists until a
    security admin authorises it. Returns the request and the first half of
    the initial password, to be shown to the system admin once and handed to
    the person. Raises DomainError."""
    _require_role(by, Role.ADMIN)
    if by is None:
        raise DomainError(ERR_NOT_ALLOWED)
    username = username.strip()
    if get_user_model().objects.filter(username=username).exists():
        raise DomainError(ERR_USERNAME_TAKEN, field="username")
    _check_no_pending(username=username)
    _check_role_fits(role, organisation)
    _require_in_scope(by, organisation)
    half = password_half()
    req = AccountRequest.objects.create(
        kind=AccountRequestKind.CREATE,
        username=username,
        display_name=display_name,
        phone=phone,
        organisation=organisation,
        role=role,
        secret=half,
        requested_by=by,
    )
    _audit_request(req, "admin.account_request", by)
    return req, half


@transaction.atomic
def account_request_change(*, user, organisation: Organisation, role: str, by) -> AccountRequest:
    """The system admin asks to move an account to another organisation
    and/or role; it changes when a security admin authorises it."""
    _require_role(by, Role.ADMIN)
    if by is None:
        raise DomainError(ERR_NOT_ALLOWED)
    _require_not_self(by, user)
    if ApiKey.objects.filter(user_id=user.pk).exists():  # a key's role is the key's
        raise DomainError(ERR_NOT_ALLOWED)
    _check_role_fits(role, organisation)
    _require_in_scope(by, organisation)
    _require_in_scope(by, user.staff.organisation)
    _check_no_pending(user=user)
    req = AccountRequest.objects.create(
        kind=AccountRequestKind.CHANGE,
        user=user,
        username=user.get_username(),
        organisation=organisation,
        role=role,
        requested_by=by,
    )
    _audit_request(req, "admin.account_request", by)
    return req


@transaction.atomic
def account_request_password_reset(*, user, by) -> tuple[AccountRequest, str]:
    """The system admin asks for a new password for an account (forgotten
    password). Returns the request and the first half of the new password,
    shown to the system admin once."""
    _require_role(by, Role.ADMIN)
    if by is None:
        raise DomainError(ERR_NOT_ALLOWED)
    _require_not_self(by, user)
    _require_in_scope(by, user.staff.organisation)
    if not user.has_usable_password() or ApiKey.objects.filter(user_id=user.pk).exists():
        raise DomainError(ERR_SERVICE_ACCOUNT)
    _check_no_pending(user=user)
    half = password_half()
    req = AccountRequest.objects.create(
        kind=AccountRequestKind.PASSWORD_RESET,
        user=user,
        username=user.get_username(),
        organisation=user.staff.organisation,
        secret=half,
        requested_by=by,
    )
    _audit_request(req, "admin.account_request", by)
    return req, half


def _request_for_decision(req: AccountRequest, by) -> AccountRequest:
    """The request locked, pending, inside the security admin's region, not
    their own and not about their own account."""
    _require_role(by, Role.SECURITY_ADMIN)
    if by is None:
        raise DomainError(ERR_NOT_ALLOWED)
    req = (
        AccountRequest.objects.select_for_update(of=("self",))
        .select_related("organisation__region", "user__staff__organisation__region")
        .get(pk=req.pk)
    )
    if req.status != AccountRequestStatus.PENDING:
        raise DomainError(ERR_REQUEST_STATUS)
    if req.requested_by_id == by.pk:
        raise DomainError(ERR_REQUEST_OWN)
    _require_in_scope(by, req.organisation)
    if req.user_id is not None:
        _require_not_self(by, req.user)
        _require_in_scope(by, req.user.staff.organisation)
    return req


@transaction.atomic
def account_request_approve(*, req: AccountRequest, by) -> tuple[AccountRequest, str]:
    """A security admin authorises a request; it takes effect now. For a new
    account or a reset, returns the second half of the initial password, to
    be shown to the security admin once (else ""): the password is the
    system admin's half followed by this one, and must be changed at the
    first sign-in. Raises DomainError (or ValidationError, password rules)."""
    req = _request_for_decision(req, by)
    half = ""
    if req.kind == AccountRequestKind.CREATE:
        half = password_half()
        req.user = _create_account(
            username=req.username,
            password=req.secret + half,
            organisation=req.organisation,
            role=req.role,
            display_name=req.display_name,
            phone=req.phone,
            must_change_password=True,
            by=by,
            authorised=req,
        )
    elif req.kind == AccountRequestKind.CHANGE:
        _change_account(
            user=req.user, organisation=req.organisation, role=req.role, by=by, authorised=req
        )
    else:
        half = password_half()
        _set_password(
            user=req.user, password=req.secret + half, by=by, temporary=True, authorised=req
        )
    req.status = AccountRequestStatus.APPROVED
    req.secret = ""
    req.decided_by = by
    req.decided_at = timezone.now()
    req.save(update_fields=["status", "secret", "user", "decided_by", "decided_at"])
    _audit_request(req, "security.account_request_approve", by)
    return req, half


@transaction.atomic
def account_request_reject(*, req: AccountRequest, by, reason: str) -> AccountRequest:
    """A security admin turns a request down, with a reason; nothing changes
    (a requested account is never made) and the first half is discarded."""
    reason = (reason or "").strip()
    req = _request_for_decision(req, by)
    if not reason:
        raise DomainError(ERR_REJECT_REASON, field="reason")
    req.status = AccountRequestStatus.REJECTED
    req.secret = ""
    req.reason = reason[:200]
    req.decided_by = by
    req.decided_at = timezone.now()
    req.save(update_fields=["status", "secret", "reason", "decided_by", "decided_at"])
    _audit_request(req, "security.account_request_reject", by)
    return req


# --- security admin -------------------------------------------------------------


@transaction.atomic
def staff_reset_mfa(*, user, by):
    """Remove the user's TOTP devices (lost phone); they enrol again at the
    next login. Their sessions end."""
    _require_role(by, Role.SECURITY_ADMIN)
    _require_not_self(by, user)
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    profile = _profile_for_update(user)
    _end_sessions(profile)
    history_stamp(profile, user=by, reason="staff.mfa_reset")
    profile.save(update_fields=["session_epoch"])
    audit_record(
        actor=by,
        action="security.mfa_reset",
        object_type="user",
        object_id=user.pk,
        detail={"devices": removed},
    )
    return user


@transaction.atomic
def lockout_release(*, username: str, by) -> int:
    """Unlock an account locked by repeated failed logins (django-axes)."""
    _require_role(by, Role.SECURITY_ADMIN)
    count = axes_reset(username=username)
    User = get_user_model()
    pk = User.objects.filter(username=username).values_list("pk", flat=True).first()
    audit_record(
        actor=by,
        action="security.unlock",
        object_type="user",
        object_id=pk or "",
        detail={"attempts": count},
    )
    return count


def _check_custodian(custodian, *, organisation: Organisation, role: str) -> None:
    """The custodian of a key is an active person (not a service account,
    not one of the 三员) of the key's organisation holding the key's role:
    someone who may read that data anyway, so holding the key gives nobody
    more than they had (SECURITY.md G4)."""
    profile = getattr(custodian, "staff", None) if custodian is not None else None
    if (
        custodian is None
        or not custodian.is_active
        or profile is None
        or profile.organisation_id != organisation.pk
        or role_of(custodian) != role
        or ROLE_INFO[Role(role)].admin_class
        or ApiKey.objects.filter(user_id=custodian.pk).exists()
    ):
        raise DomainError(ERR_API_CUSTODIAN, field="custodian")


def _key_for_update(api_key: ApiKey, *statuses: str) -> ApiKey:
    api_key = (
        ApiKey.objects.select_for_update(of=("self",))
        .select_related("user", "custodian__staff", "organisation__region")
        .get(pk=api_key.pk)
    )
    if api_key.revoked_at is not None or (statuses and api_key.status not in statuses):
        raise DomainError(ERR_API_STATUS)
    return api_key


@transaction.atomic
def apikey_request(*, name: str, organisation: Organisation, role: str, custodian, by) -> ApiKey:
    """The security admin asks for a partner key of one organisation and
    role, naming its custodian. Nothing is usable yet: no secret exists
    until the system admin approves and the custodian collects it.
    Raises DomainError."""
    _require_role(by, Role.SECURITY_ADMIN)
    if ROLE_INFO[Role(role)].admin_class:
        raise DomainError(ERR_API_ROLE, field="role")
    _check_role_fits(role, organisation)
    _require_in_scope(by, organisation)
    _check_custodian(custodian, organisation=organisation, role=role)
    prefix = secrets.token_hex(4)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = secrets.token_hex(4)
    service_user = staff_create(
        username=f"{API_USERNAME_PREFIX}{prefix}",
        password=None,
        organisation=organisation,
        role=role,
        display_name=name,
    )
    service_user.is_active = False  # until the custodian collects the key
    service_user.save(update_fields=["is_active"])
    api_key = ApiKey(
        name=name,
        organisation=organisation,
        user=service_user,
        prefix=prefix,
        status=ApiKeyStatus.REQUESTED,
        custodian=custodian,
        created_by=by,
    )
    api_key.full_clean()
    api_key.save()
    audit_record(
        actor=by,
        action="security.api_key_request",
        object_type="api_key",
        object_id=api_key.pk,
        detail={
            "role": role,
            "organisation": organisation.pk,
            "prefix": prefix,
            "custodian": custodian.pk,
        },
    )
    return api_key


@transaction.atomic
def apikey_approve(*, api_key: ApiKey, by) -> ApiKey:
    """The system admin approves a requested key; its custodian may then
    collect it. The approver never sees the secret."""
    _require_role(by, Role.ADMIN)
    api_key = _key_for_update(api_key, ApiKeyStatus.REQUESTED)
    _require_in_scope(by, api_key.organisation)
    _check_custodian(
        api_key.custodian, organisation=api_key.organisation, role=role_of(api_key.user)
    )
    api_key.status = ApiKeyStatus.APPROVED
    api_key.approved_by = by
    api_key.approved_at = timezone.now()
    api_key.save(update_fields=["status", "approved_by", "approved_at"])
    audit_record(
        actor=by,
        action="admin.api_key_approve",
        object_type="api_key",
        object_id=api_key.pk,
        detail={"prefix": api_key.prefix, "custodian": api_key.custodian_id},
    )
    return api_key


@transaction.atomic
def apikey_reject(*, api_key: ApiKey, by) -> ApiKey:
    """The system admin turns a request down; the key never exists."""
    _require_role(by, Role.ADMIN)
    api_key = _key_for_update(api_key, ApiKeyStatus.REQUESTED)
    _require_in_scope(by, api_key.organisation)
    api_key.status = ApiKeyStatus.REJECTED
    api_key.approved_by = by
    api_key.approved_at = timezone.now()
    api_key.save(update_fields=["status", "approved_by", "approved_at"])
    audit_record(
        actor=by,
        action="admin.api_key_reject",
        object_type="api_key",
        object_id=api_key.pk,
        detail={"prefix": api_key.prefix},
    )
    return api_key


@transaction.atomic
def apikey_collect(*, api_key: ApiKey, by) -> tuple[ApiKey, str]:
    """The custodian collects an approved key: the secret is made now and
    returned to be shown once (only its SHA-256 is kept); the key works
    from this moment. Raises DomainError for anyone but the custodian."""
    api_key = _key_for_update(api_key, ApiKeyStatus.APPROVED)
    if by is None or api_key.custodian_id != by.pk:
        raise DomainError(ERR_NOT_ALLOWED)
    # the custodian as stored now (a role or organisation change since the
    # request ends their claim), not the caller's possibly stale object
    _check_custodian(
        api_key.custodian, organisation=api_key.organisation, role=role_of(api_key.user)
    )
    key = f"{api_key.prefix}.{secrets.token_urlsafe(32)}"
    api_key.key_hash = hash_key(key)
    api_key.status = ApiKeyStatus.ACTIVE
    api_key.collected_at = timezone.now()
    api_key.save(update_fields=["key_hash", "status", "collected_at"])
    service_user = api_key.user
    service_user.is_active = True
    service_user.save(update_fields=["is_active"])
    audit_record(
        actor=by,
        action="security.api_key_collect",
        object_type="api_key",
        object_id=api_key.pk,
        detail={"prefix": api_key.prefix},
    )
    return api_key, key


@transaction.atomic
def apikey_revoke(*, api_key: ApiKey, by) -> ApiKey:
    """Revoke a key (or withdraw a request) at once; its service account is
    disabled."""
    _require_role(by, Role.SECURITY_ADMIN)
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.revoked_by = by
    api_key.save(update_fields=["revoked_at", "revoked_by"])
    service_user = api_key.user
    service_user.is_active = False
    service_user.save(update_fields=["is_active"])
    audit_record(
        actor=by,
        action="security.api_key_revoke",
        object_type="api_key",
        object_id=api_key.pk,
        detail={"prefix": api_key.prefix},
    )
    return api_key


# --- break the glass ------------------------------------------------------------


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN_LENGTH:
        raise DomainError(ERR_REASON_SHORT, field="reason")
    return reason


def breakglass_request(
    *, by, id_type: str, id_number: str, reason: str, request=None
) -> BreakGlassGrant | None:
    """Emergency read access for ``BREAK_GLASS_HOURS`` to the patient with
    this document number, outside the user's scope but inside their county's
    register (SECURITY.md G25).

    Health staff only; a written reason is required. Returns the active
    grant (an existing one is reused), or None when the patient is already
    within the user's scope. Raises ERR_BREAKGLASS_NOT_FOUND alike for a
    number not on the register and one registered in another county, so
    the form is no oracle for the whole province. Every lookup is audited,
    whatever its outcome, with a keyed hash of the number (never the number).
    """
    # patients imports accounts: import it here, not at module load
    from patients.models import Patient, id_number_index_for
    from patients.selectors import patient_list_visible_to

    if fieldset_of(by) != "health":
        raise DomainError(ERR_BREAKGLASS_ROLE)
    reason = _clean_reason(reason)
    index = id_number_index_for(id_type, id_number)
    search_path = breakglass_search_path(by)
    # The lookup reads the key only, never the record: the grant below is
    # what lets patients.selectors open it.
    patient_id = (
        Patient.objects.filter(id_number_index=index, region__path__startswith=search_path)
        .values_list("pk", flat=True)
        .first()
        if search_path
        else None
    )
    lookup = {"id_hash": blind_index(index, purpose="audit-breakglass")[:16]}

    def audit(action: str, detail: dict | None = None) -> None:
        audit_record(
            actor=by,
            action=action,
            object_type="patient",
            object_id=patient_id or "",
            detail={**lookup, **(detail or {})},
            request=request,
        )

    if patient_id is None:
        audit("breakglass.not_found")
        raise DomainError(ERR_BREAKGLASS_NOT_FOUND, field="id_number")
    now = timezone.now()
    grant = (
        BreakGlassGrant.objects.filter(user=by, patient_id=patient_id, expires_at__gt=now)
        .order_by("-expires_at")
        .first()
    )
    if grant is not None:
        # asked again while a grant lasts: no new grant, but the request is
        # on record like every other (the review counts the reads anyway)
        audit("breakglass.reuse", {"grant": str(grant.pk)})
        return grant
    if patient_list_visible_to(user=by).filter(pk=patient_id).exists():
        audit("breakglass.in_scope")
        return None
    with transaction.atomic():
        grant = BreakGlassGrant(
            user=by,
            patient_id=patient_id,
            reason=reason,
            created_at=now,
            expires_at=now + timedelta(hours=settings.BREAK_GLASS_HOURS),
        )
        grant.full_clean()
        grant.save(force_insert=True)
        audit("breakglass.grant", {"grant": str(grant.pk), "hours": settings.BREAK_GLASS_HOURS})
    return grant


@transaction.atomic
def breakglass_review(*, grant: BreakGlassGrant, by, note: str = "") -> BreakGlassGrant:
    """The audit admin records that a grant and its uses were reviewed."""
    _require_role(by, Role.AUDIT_ADMIN)
    grant = BreakGlassGrant.objects.select_for_update().get(pk=grant.pk)
    grant.reviewed_by = by
    grant.reviewed_at = timezone.now()
    grant.review_note = (note or "").strip()[:200]
    grant.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    audit_record(
        actor=by,
        action="breakglass.review",
        object_type="break_glass",
        object_id=grant.pk,
    )
    return grant
