"""Production: secrets are required, transport is locked down."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env, secret

from .base import *  # noqa: F403
from .base import DATABASES

DEBUG = False
SECRET_KEY = secret("SECRET_KEY")
if not SECRET_KEY or SECRET_KEY.startswith("insecure") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value of 50+ characters.")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Production runs on PostgreSQL: set DATABASE_URL.")
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
BLIND_INDEX_KEY = secret("BLIND_INDEX_KEY")
if not FIELD_ENCRYPTION_KEYS or not BLIND_INDEX_KEY:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY must be set.")
AUDIT_CHAIN_KEY = secret("AUDIT_CHAIN_KEY")
if not AUDIT_CHAIN_KEY or len(AUDIT_CHAIN_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_CHAIN_KEY must be set to a random value of 32+ characters.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# TLS ends at the reverse proxy (docker-compose.yml → proxy, deploy/nginx/):
# it sets X-Forwarded-Proto itself, overwriting whatever a client sent, and
# the app's port is not published, so the header can be trusted.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The container health check speaks plain HTTP on loopback (no redirect).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
MFA_REQUIRED = env.bool("MFA_REQUIRED", default=True)
WHITENOISE_USE_FINDERS = False
