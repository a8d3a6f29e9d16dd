"""Session rules (SECURITY.md G11) and the steps a signed-in user must take
before anything else: the second factor (G10) and a due password change (G8).

- idle timeout: ``SESSION_IDLE_TIMEOUT`` (30 min), ``SESSION_IDLE_TIMEOUT_ADMIN``
  (15 min) for the 三员 roles;
- absolute timeout: ``SESSION_COOKIE_AGE`` (12 h) after the login, however
  busy the session;
- a password change, role change or deactivation bumps
  ``StaffProfile.session_epoch``; a session carrying an older epoch ends on its
  next request. (Deactivated users are also refused by Django's ModelBackend.)

Must run after ``django_otp.middleware.OTPMiddleware`` (it uses
``user.is_verified()``) and before ``core.middleware.LoginRequiredMiddleware``
(its ``process_view`` adds the "session ended" message first).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from accounts import mfa
from accounts.passwords import password_change_required
from accounts.selectors import staff_profile_of

SESSION_EPOCH = "_sec_epoch"
SESSION_AUTH_AT = "_sec_auth_at"
SESSION_SEEN_AT = "_sec_seen_at"
SESSION_NO_DEVICE = "_sec_no_device"
# Writing the session on every request costs a DB write; a minute of slack
# in the idle clock saves it.
SEEN_RESOLUTION = 60

MSG_SESSION_EXPIRED = _("会话已超时或已失效，请重新登录。")
MSG_PASSWORD_CHANGE = _("请先修改密码后再继续使用。")

# Views a signed-in user may reach before passing the second factor or
# changing a due password.
EXEMPT_VIEWS = frozenset(
    {
        "accounts:login",
        "accounts:logout",
        "accounts:mfa-setup",
        "accounts:mfa-verify",
        "accounts:password-change",
        "accounts:no-role",
        "set_language",
        "healthz",
    }
)
MFA_EXEMPT_VIEWS = EXEMPT_VIEWS - {"accounts:password-change"}


def stamp_session(request, user) -> None:
    """Record the login in the session (called on ``user_logged_in``)."""
    profile = staff_profile_of(user)
    now = int(time.time())
    request.session[SESSION_EPOCH] = profile.session_epoch if profile else 0
    request.session[SESSION_AUTH_AT] = now
    request.session[SESSION_SEEN_AT] = now
    # Asked once here rather than on every request of the session.
    request.session[SESSION_NO_DEVICE] = not mfa.has_confirmed_device(user)


def refresh_epoch(request, user) -> None:
    """Keep the current session after the user's own password change."""
    user.__dict__.pop("_profile_cache", None)
    profile = staff_profile_of(user)
    request.session[SESSION_EPOCH] = profile.session_epoch if profile else 0


def idle_timeout_for(user) -> int:
    if mfa.is_admin_class(user):
        return settings.SESSION_IDLE_TIMEOUT_ADMIN
    return settings.SESSION_IDLE_TIMEOUT


def session_end_reason(request, user) -> str | None:
    """Why this session must end now, or None."""
    session = request.session
    auth_at = session.get(SESSION_AUTH_AT)
    seen_at = session.get(SESSION_SEEN_AT)
    if auth_at is None or seen_at is None or SESSION_EPOCH not in session:
        return "unstamped"
    now = int(time.time())
    if now - auth_at > settings.SESSION_COOKIE_AGE:
        return "absolute"
    if now - seen_at > idle_timeout_for(user):
        return "idle"
    profile = staff_profile_of(user)
    if session[SESSION_EPOCH] != (profile.session_epoch if profile else 0):
        return "revoked"
    return None


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


class SessionSecurityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            reason = session_end_reason(request, user)
            if reason:
                request._session_end_reason = reason
                logout(request)
            else:
                now = int(time.time())
                if now - request.session[SESSION_SEEN_AT] >= SEEN_RESOLUTION:
                    request.session[SESSION_SEEN_AT] = now
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Runs before core.middleware.LoginRequiredMiddleware, which then
        # sends the signed-out user to the login page.
        if getattr(request, "_session_end_reason", None) and not _is_api(request):
            messages.warning(request, MSG_SESSION_EXPIRED)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        name = request.resolver_match.view_name if request.resolver_match else ""
        if name in EXEMPT_VIEWS:
            return None
        if name not in MFA_EXEMPT_VIEWS and self._needs_second_factor(request, user):
            return self._divert(request, "mfa")
        if password_change_required(staff_profile_of(user)):
            return self._divert(request, "password")
        return None

    @staticmethod
    def _needs_second_factor(request, user) -> bool:
        """``mfa.needs_second_factor`` without a device query on every request
        of a session that has none (noted at login): a device enrolled later
        is confirmed in this session (and verified with it), one enrolled
        elsewhere counts from the next sign-in."""
        if mfa.mfa_required_for(user):
            return mfa.needs_second_factor(user)
        if request.session.get(SESSION_NO_DEVICE):
            return False
        needed = mfa.needs_second_factor(user)
        if not needed and not user.is_verified():
            request.session[SESSION_NO_DEVICE] = True
        return needed

    def _divert(self, request, step: str):
        if _is_api(request):
            # A session that has not finished signing in is no session for the
            # API: DRF's SessionAuthentication then answers 401/403.
            request.user = AnonymousUser()
            return None
        if step == "mfa":
            target = "accounts:mfa-verify"
            if not mfa.has_confirmed_device(request.user):
                target = "accounts:mfa-setup"
        else:
            target = "accounts:password-change"
            messages.warning(request, MSG_PASSWORD_CHANGE)
        url = reverse(target)
        if request.method == "GET":
            url += "?" + urlencode({"next": request.get_full_path()})
        return redirect(url)
