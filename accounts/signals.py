"""Audit of sign-ins, sign-outs and failures (SECURITY.md G12), the session
stamp of a login (G11), and the one-role rule on group membership (G4).

Connected in ``AccountsConfig.ready``.
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed

from accounts.roles import ROLE_INFO
from audit.services import audit_record
from core.crypto import blind_index
from core.errors import DomainError

SCOPE_GROUP_PREFIX = "scope:"


def on_logged_in(sender, request, user, **kwargs):
    from accounts.middleware import stamp_session

    if request is None:
        return
    stamp_session(request, user)
    audit_record(
        actor=user, action="auth.login", object_type="user", object_id=user.pk, request=request
    )


def on_logged_out(sender, request, user, **kwargs):
    if user is None:
        return
    reason = getattr(request, "_session_end_reason", None) if request is not None else None
    audit_record(
        actor=user,
        action="auth.session_expired" if reason else "auth.logout",
        object_type="user",
        object_id=user.pk,
        detail={"reason": reason} if reason else None,
        request=request,
    )


def _username_target(username: str | None) -> tuple[str, dict]:
    """The account a failed attempt was aimed at, without writing what was
    typed: it may be a mistyped password or someone's ID number."""
    if not username:
        return "", {}
    User = get_user_model()
    pk = User.objects.filter(username=username).values_list("pk", flat=True).first()
    if pk is not None:
        return str(pk), {}
    return "", {"username_hash": blind_index(username, purpose="audit-username")[:16]}


def on_login_failed(sender, credentials, request=None, **kwargs):
    object_id, detail = _username_target((credentials or {}).get("username"))
    audit_record(
        actor=None,
        action="auth.login_failed",
        object_type="user",
        object_id=object_id,
        detail=detail,
        request=request,
    )


def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    object_id, detail = _username_target(username)
    audit_record(
        actor=None,
        action="auth.locked_out",
        object_type="user",
        object_id=object_id,
        detail=detail,
        request=request,
    )


def _kind(name: str) -> str | None:
    if name in ROLE_INFO:
        return "role"
    if name.startswith(SCOPE_GROUP_PREFIX):
        return "scope"
    return None


def on_groups_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """Refuse any group change that would give a user two roles or two
    scopes, whoever makes it (services, Django admin, a shell)."""
    from accounts.services import ERR_ONE_ROLE

    if action != "pre_add" or not pk_set:
        return
    User = get_user_model()
    if not reverse:
        adding = [
            _kind(n) for n in Group.objects.filter(pk__in=pk_set).values_list("name", flat=True)
        ]
        held = [
            _kind(n) for n in instance.groups.exclude(pk__in=pk_set).values_list("name", flat=True)
        ]
        for kind in ("role", "scope"):
            if kind in adding and (adding + held).count(kind) > 1:
                raise DomainError(ERR_ONE_ROLE, field="role")
        return
    kind = _kind(instance.name)
    if kind is None:
        return
    holders = User.objects.filter(pk__in=pk_set).exclude(groups=instance)
    names = Group.objects.filter(user__in=holders).values_list("name", flat=True)
    if any(_kind(n) == kind for n in names):
        raise DomainError(ERR_ONE_ROLE, field="role")


def connect() -> None:
    User = get_user_model()
    user_logged_in.connect(on_logged_in, dispatch_uid="accounts.audit_login")
    user_logged_out.connect(on_logged_out, dispatch_uid="accounts.audit_logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="accounts.audit_login_failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="accounts.audit_locked_out")
    m2m_changed.connect(
        on_groups_changed, sender=User.groups.through, dispatch_uid="accounts.one_role"
    )
