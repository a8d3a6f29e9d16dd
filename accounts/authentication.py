"""DRF authentication of partner systems by named API key (SECURITY.md G10).

Header: ``Authorization: Api-Key <key>``. The key is ``<prefix>.<secret>``;
the prefix finds the row, the SHA-256 of the whole key is compared in
constant time. A revoked key or a deactivated service account is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.models import ApiKey

KEYWORD = "Api-Key"
ERR_BAD_KEY = _("接口密钥无效或已吊销。")
# last_used_at is a hint for the security admin, not an audit trail: write it
# at most every few minutes instead of on every request.
LAST_USED_RESOLUTION = timedelta(minutes=5)


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
                .filter(prefix=parts[0], revoked_at__isnull=True)
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
