"""The second factor: TOTP (RFC 6238) with django-otp (SECURITY.md G10).

Who needs it: the 三员 (admin-class) roles and superusers always, everyone
when ``settings.MFA_REQUIRED`` (production), and anyone who enrolled a device
of their own accord. The web login asks for the code after the password
(``accounts:mfa-verify``); the API token endpoint calls ``verify_for_token``.
"""

from __future__ import annotations

import base64
import io
import logging

from django.conf import settings
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.roles import ADMIN_CLASS_ROLES, role_of

log = logging.getLogger(__name__)

DEVICE_NAME = "TOTP"


def is_admin_class(user) -> bool:
    """One of the 三员 roles, or a Django superuser (who runs /admin/)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_superuser) or role_of(user) in ADMIN_CLASS_ROLES


def mfa_required_for(user) -> bool:
    """Whether ``user`` must present a second factor to sign in."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(settings.MFA_REQUIRED) or is_admin_class(user)


def confirmed_device(user) -> TOTPDevice | None:
    if not getattr(user, "pk", None):
        return None
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).order_by("pk").first()


def has_confirmed_device(user) -> bool:
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def needs_second_factor(user) -> bool:
    """True when this signed-in session must still pass the TOTP step."""
    if not getattr(user, "is_authenticated", False):
        return False
    verified = getattr(user, "is_verified", None)
    if verified is not None and verified():
        return False
    return mfa_required_for(user) or has_confirmed_device(user)


def verify_code(user, code: str) -> TOTPDevice | None:
    """The user's confirmed device accepting ``code`` (throttled, no replay), or None."""
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit():
        return None
    device = confirmed_device(user)
    if device is None:
        return None
    return otp_verify_token(user, device.persistent_id, code)


def verify_for_token(user, otp_code: str | None) -> bool:
    """For ``POST /api/v1/auth/token/``: may ``user`` (password already
    checked) receive a token with this one-time code?

    True when no second factor is needed for the user; otherwise only when
    ``otp_code`` is accepted by the user's confirmed TOTP device. A user who
    must use MFA but has not enrolled yet gets False (enrol on the web first).
    """
    if not (mfa_required_for(user) or has_confirmed_device(user)):
        return True
    return verify_code(user, otp_code or "") is not None


def device_for_enrolment(user) -> TOTPDevice:
    """The user's unconfirmed device (created on first call) to enrol."""
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def secret_base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as a ``data:image/svg+xml`` URI (CSP allows data: images)."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buf = io.BytesIO()
    img.save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
