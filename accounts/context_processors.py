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
        **_unusual_access(user, role),
    }


# Who is told of unusual-access alerts (audit.services.unusual_access_scan):
# the audit admin reviews them, the security admin acts on the account.
UNUSUAL_ACCESS_NOTIFIED = (Role.AUDIT_ADMIN, Role.SECURITY_ADMIN)
UNUSUAL_ACCESS_NOTICE_DAYS = 7


def _unusual_access(user, role) -> dict:
    """For the audit and security admins: the number of unusual-access
    alerts of the last days about accounts in their region, shown on every
    page (counted only when the page shows it)."""
    if role not in UNUSUAL_ACCESS_NOTIFIED:
        return {}
    from datetime import timedelta

    from django.utils import timezone
    from django.utils.functional import SimpleLazyObject

    from audit.selectors import unusual_access_list_for

    since = timezone.now() - timedelta(days=UNUSUAL_ACCESS_NOTICE_DAYS)
    return {
        "unusual_access_alerts": SimpleLazyObject(
            lambda: unusual_access_list_for(user).filter(at__gte=since).count()
        )
    }
