"""Password rules (SECURITY.md G8).

等保 2.0 level 3 asks for complexity; ASVS discourages composition rules. We
follow 等保 (the binding assessment in China) and keep the ASVS protections
that do not conflict: length ≥ 12, a common-password list, MFA. The choice is
documented in docs/security.md.
"""

from __future__ import annotations

import string

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

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
