"""Page guards by role. A wrong role is a 403 (audited centrally by
``core.middleware.AuditDenialMiddleware``); records outside the user's
region are 404, decided by the selectors."""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied

from accounts.roles import role_of


def role_required(*roles: str):
    """Only users holding one of ``roles`` may open the view."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if role_of(request.user) not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
