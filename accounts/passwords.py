"""Password rules (SECURITY.md G8).

等保 2.0 level 3 asks for complexity; ASVS discourages composition rules. We
follow 等保 (the binding assessment in China) and keep the ASVS protections
that do not conflict: length ≥ 12, a common-password list, MFA. The choice is
documented in docs/security.md.
"""

from __future__ import annotations

import string
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import PasswordHistory

CLASSES = (
    set(string.ascii_lowercase),
    set(string.ascii_uppercase),
    set(string.digits),
)


class CharacterClassValidator:
    """At least 3 of 4 classes: lower case, upper case, digits, other symbols."""

    min_classes = 3

    def validate(self, password: str, user=None) -> None:
        present = sum(1 for cls in CLASSES if any(c in cls for c in password))
        if any(not c.isalnum() for c in password):
            present += 1
        if present < self.min_classes:
            raise ValidationError(
                _("密码须包含大写字母、小写字母、数字、符号中的至少三类。"),
                code="password_classes",
            )

    def get_help_text(self) -> str:
        return _("密码须包含大写字母、小写字母、数字、符号中的至少三类。")


class MaximumLengthValidator:
    """At most ``max_length`` characters (ASVS 2.1.2: at least 64 allowed; we allow 128)."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                _("密码不能超过%(max_length)d个字符。"),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return _("密码不能超过%(max_length)d个字符。") % {"max_length": self.max_length}


ERR_PASSWORD_REUSED = gettext_lazy("不能使用最近%(count)d次用过的密码。")


class PasswordHistoryValidator:
    """The new password differs from the current one and the last
    ``PASSWORD_HISTORY_COUNT`` ones (kept as hashes in PasswordHistory)."""

    def validate(self, password: str, user=None) -> None:
        if user is None or user.pk is None:
            return
        count = settings.PASSWORD_HISTORY_COUNT
        hashes = [user.password] if user.password else []
        hashes += list(
            PasswordHistory.objects.filter(user_id=user.pk)
            .order_by("-created_at", "-id")
            .values_list("password", flat=True)[:count]
        )
        if any(check_password(password, encoded) for encoded in hashes):
            raise ValidationError(
                ERR_PASSWORD_REUSED, code="password_reused", params={"count": count}
            )

    def get_help_text(self) -> str:
        return ERR_PASSWORD_REUSED % {"count": settings.PASSWORD_HISTORY_COUNT}


def password_change_required(profile) -> bool:
    """True when the user must choose a new password before going on: an
    admin reset it, or it is older than PASSWORD_MAX_AGE_DAYS."""
    if profile is None:
        return False
    if profile.must_change_password:
        return True
    changed = profile.password_changed_at
    if changed is None:
        return True
    return timezone.now() - changed > timedelta(days=settings.PASSWORD_MAX_AGE_DAYS)
