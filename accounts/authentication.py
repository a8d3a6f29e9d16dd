"""DRF authentication: personal API tokens with the session rules, and
partner systems by named API key.

``ExpiringTokenAuthentication`` (``Authorization: Token <token>``) holds a
token to the rules of a browser session (SECURITY.md G8, G11): refused when
the password must be changed (90 days, or a temporary password set by the
admin), 12 hours after it was issued however busy, and after 30 minutes
unused (15 for the 三员). Its last use is written at most once a minute.

``ApiKeyAuthentication`` (``Authorization: Api-Key <key>``): the key is
``<prefix>.<secret>``; the prefix finds the row, the SHA-256 of the whole key
is compared in constant time. A key not yet approved and collected, a
revoked key or a deactivated service account is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    TokenAuthentication,
    get_authorization_header,
)
from rest_framework.authtoken.models import Token

from accounts.models import ApiKey, ApiKeyStatus, TokenActivity

KEYWORD = "Api-Key"
ERR_BAD_KEY = _("接口密钥无效或已吊销。")
# last_used_at is a hint for the security admin, not an audit trail: write it
# at most every few minutes instead of on every request.
LAST_USED_RESOLUTION = timedelta(minutes=5)


ERR_TOKEN_PASSWORD = _("密码已过期或为临时密码：请先在网页上修改密码，再重新获取令牌。")
ERR_TOKEN_EXPIRED = _("令牌已过期（签发已满12小时），请重新获取令牌。")
ERR_TOKEN_IDLE = _("令牌因长时间未使用已失效，请重新获取令牌。")
TOKEN_ERRORS = {"absolute": ERR_TOKEN_EXPIRED, "idle": ERR_TOKEN_IDLE}
# The idle clock of a token moves in steps of a minute: one write a minute
# at most, however busy the client (as for sessions).
TOKEN_SEEN_RESOLUTION = timedelta(seconds=60)


def token_idle_timeout(user) -> timedelta:
    from accounts.mfa import is_admin_class

    seconds = (
        settings.SESSION_IDLE_TIMEOUT_ADMIN
        if is_admin_class(user)
        else settings.SESSION_IDLE_TIMEOUT
    )
    return timedelta(seconds=seconds)


def token_last_used(token: Token):
    try:
        return token.activity.last_used_at
    except TokenActivity.DoesNotExist:
        return token.created


def token_expiry_reason(token: Token, user, now=None) -> str | None:
    """ "absolute" 12 h after issue, "idle" after the idle timeout, else None."""
    now = now or timezone.now()
    if now - token.created > timedelta(seconds=settings.SESSION_COOKIE_AGE):
        return "absolute"
    idle = now - token_last_used(token)
    shortest = min(settings.SESSION_IDLE_TIMEOUT_ADMIN, settings.SESSION_IDLE_TIMEOUT)
    # the role (a query) is asked only when the shorter timeout has passed
    if idle > timedelta(seconds=shortest) and idle > token_idle_timeout(user):
        return "idle"
    return None


def token_touch(token: Token, now=None, *, force: bool = False) -> None:
    """Move the token's idle clock to now (one upsert, at most once a minute)."""
    now = now or timezone.now()
    if not force and now - token_last_used(token) < TOKEN_SEEN_RESOLUTION:
        return
    TokenActivity.objects.bulk_create(
        [TokenActivity(token=token, last_used_at=now)],
        update_conflicts=True,
        unique_fields=["token"],
        update_fields=["last_used_at"],
    )


def token_issue(user) -> Token:
    """The user's token for the token endpoint: the current one while it is
    valid (its clock restarts), else a new one in its place."""
    token = Token.objects.select_related("activity").filter(user=user).first()
    if token is not None and token_expiry_reason(token, user) is not None:
        token.delete()
        token = None
    if token is None:
        token = Token.objects.create(user=user)
    token_touch(token, force=True)
    return token


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication under the session rules (module docstring)."""

    def authenticate_credentials(self, key):
        from accounts.passwords import password_change_required

        token = (
            Token.objects.select_related("user__staff__organisation__region", "activity")
            .filter(key=key)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(_("认证令牌无效。"))
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("用户未激活或已删除。"))
        # the profile is read here anyway: keep it for the request (selectors)
        user.__dict__.setdefault("_profile_cache", getattr(user, "staff", None))
        now = timezone.now()
        reason = token_expiry_reason(token, user, now)
        if reason is not None:
            from audit.services import audit_record

            token.delete()
            audit_record(
                actor=user,
                action="auth.token_expired",
                object_type="user",
                object_id=user.pk,
                detail={"reason": reason},
            )
            raise exceptions.AuthenticationFailed(TOKEN_ERRORS[reason])
        if password_change_required(user.__dict__["_profile_cache"]):
            raise exceptions.AuthenticationFailed(ERR_TOKEN_PASSWORD)
        token_touch(token, now)
        return user, token


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    prefix, sep, secret = key.partition(".")
    if not sep or not prefix or not secret:
        return None
    return prefix, secret


class ApiKeyAuthentication(BaseAuthentication):
    keyword = KEYWORD

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed(ERR_BAD_KEY)
        try:
            key = auth[1].decode("ascii")
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(ERR_BAD_KEY) from exc
        return self.authenticate_key(key, request)

    def authenticate_key(self, key: str, request=None):
        parts = split_key(key)
        api_key = None
        if parts is not None:
            api_key = (
                ApiKey.objects.select_related("user")
                .filter(prefix=parts[0], revoked_at__isnull=True, status=ApiKeyStatus.ACTIVE)
                .first()
            )
        if (
            api_key is None
            or not hmac.compare_digest(api_key.key_hash, hash_key(key))
            or not api_key.user.is_active
        ):
            self._audit_failure(parts[0] if parts else "", request)
            raise exceptions.AuthenticationFailed(ERR_BAD_KEY)
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword

    @staticmethod
    def _audit_failure(prefix: str, request) -> None:
        from audit.services import audit_record

        audit_record(
            actor=None,
            action="auth.api_key_failed",
            object_type="api_key",
            object_id=prefix[:16],
            request=getattr(request, "_request", request),
        )
