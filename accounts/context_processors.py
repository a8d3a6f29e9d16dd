from __future__ import annotations

from accounts.navigation import nav_for
from accounts.roles import ROLE_INFO, Role, role_of
from accounts.selectors import staff_profile_of


def staff(request):
    """Role and organisation for the layout (navigation), no queries when anonymous."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    role = role_of(user)
    profile = staff_profile_of(user)
    return {
        "current_role": role,
        "current_role_label": Role(role).label if role else "",
        "current_fieldset": ROLE_INFO[role].fieldset if role else None,
        "current_organisation": profile.organisation if profile else None,
        "current_display_name": (profile.display_name if profile else "") or user.get_username(),
        "nav_items": nav_for(role, request.path),
    }
