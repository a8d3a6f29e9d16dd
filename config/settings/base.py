"""Settings shared by every environment. Values come from ``config.env``."""

from __future__ import annotations

from datetime import timedelta

from config.env import BASE_DIR, env, secret

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = secret("SECRET_KEY", "insecure-dev-key-change-me-" + "x" * 30)
# Django's test runner adds "testserver" itself; README → Configuration states this default.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

VAR_DIR = BASE_DIR / "var"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "simple_history",
    "axes",
    "django_celery_beat",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "drf_spectacular_sidecar",
    # ours
    "core",
    "audit",
    "accounts",
    "patients",
    "followups",
    "subsidies",
    "referrals",
    "reports",
]

MIDDLEWARE = [
    # outermost: every /api/ answer is no-store, whichever middleware made it
    "core.middleware.ApiNoStoreMiddleware",
    # a database outage is a 503 wherever it surfaces (session load, views)
    "core.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # before the host check: the container health check asks 127.0.0.1
    "core.middleware.LoopbackHealthCheckMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.SessionSecurityMiddleware",
    "core.middleware.AuditDenialMiddleware",
    "core.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "accounts.context_processors.staff",
            ],
        },
    },
]

# Database: SQLite by default (single-machine start), PostgreSQL via DATABASE_URL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections with a health check: a DB restart does not break
    # the next request (SECURITY.md R9), and we skip ~15 ms of connect per request.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # must be first
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.passwords.CharacterClassValidator"},
    {"NAME": "accounts.passwords.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
    {"NAME": "accounts.passwords.PasswordHistoryValidator"},
]
# Passwords change every 90 days and the last 5 may not come back (等保; G8).
PASSWORD_MAX_AGE_DAYS = env.int("PASSWORD_MAX_AGE_DAYS", default=90)
PASSWORD_HISTORY_COUNT = 5
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions live in the database: they survive a Redis outage (SECURITY.md §0.5).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 12 * 60 * 60  # absolute 12 h
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
# The 三员 (admin-class) roles get the ASVS level-3 idle timeout (G11).
SESSION_IDLE_TIMEOUT_ADMIN = env.int("SESSION_IDLE_TIMEOUT_ADMIN", default=15 * 60)

LANGUAGE_CODE = "zh-hans"
# Each language is named in itself in the switcher.
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
WHITENOISE_USE_FINDERS = DEBUG
# Files browsers ask for at the site root (/favicon.ico), served by WhiteNoise
# before the login requirement; base.html links the same file under /static/.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# Field encryption (ID numbers, phones): keys "kid:base64(32 bytes)", newest first.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
BLIND_INDEX_KEY = secret("BLIND_INDEX_KEY", None)

# The audit chain's HMAC key (SECURITY.md G13): required in production;
# derived from SECRET_KEY when unset (development, the demo). Never change it
# on a running system: rows written under the old key would not verify.
AUDIT_CHAIN_KEY = secret("AUDIT_CHAIN_KEY", None)
# Where audit.tasks.audit_checkpoint appends the chain's head: outside the
# database, ideally another volume or host (docs/security.md → Audit).
AUDIT_CHECKPOINT_DIR = env("AUDIT_CHECKPOINT_DIR", default=str(VAR_DIR / "audit-checkpoints"))

# The domain's named thresholds (DOMAIN.md); settings, not code.
HIGH_RISK_MIN_LEVEL = env.int("HIGH_RISK_MIN_LEVEL", default=3)
# A newly registered patient's first follow-up is due this many days after
# registration (DOMAIN.md → Next due date, "first time": 14 days).
FIRST_FOLLOWUP_DAYS = env.int("FIRST_FOLLOWUP_DAYS", default=14)
MFA_REQUIRED = env.bool("MFA_REQUIRED", default=False)
OTP_TOTP_ISSUER = "精防通"
# An account that opens more distinct patients than this in a day is flagged
# to the audit admin (audit.tasks.flag_unusual_access; G12).
UNUSUAL_ACCESS_THRESHOLD = env.int("UNUSUAL_ACCESS_THRESHOLD", default=200)
# Break-the-glass grants last this long (SECURITY.md G25; DHIS2: 3 hours).
BREAK_GLASS_HOURS = 3

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's tokens under the session rules: 12 h, idle 30/15 min, due password (G8, G11)
        "accounts.authentication.ExpiringTokenAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "精防通 API",
    "DESCRIPTION": "REST API of 精防通 (severe mental disorder case management).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI is served by the app (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",  # tags by resource (patients, regions, …)
    # Enums stay inline in each field: several apps reuse field names
    # ("status", "kind") with different choices, and the enum-extraction hook
    # would warn on every such pair. Every operation documents 400/401/403/404
    # (core/api/schema.py).
    "POSTPROCESSING_HOOKS": ["core.api.schema.add_error_responses"],
}

# Celery: a broker that needs no server by default (kombu's filesystem
# transport under var/), Redis when CELERY_BROKER_URL is set.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _q = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_q / "out"),
        "data_folder_out": str(_q / "out"),
        "processed_folder": str(_q / "processed"),
        # exchange tables: kombu's default is ./control, beside manage.py
        "control_folder": str(_q / "control"),
        "store_processed": False,
    }
else:
    # visibility_timeout above the longest task; no ETA beyond it (SECURITY.md 4.2).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Caches: the default one is per process. "progress" carries the live
# progress of long tasks (core.progress) from the worker to the pages, so it
# is shared: Redis when the broker is Redis, else files under var/ (the
# single-machine start, where web and worker share the disk).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "progress": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CELERY_BROKER_URL,
            "KEY_PREFIX": "jft-progress",
        }
        if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "progress"),
        }
    ),
}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# All beat schedules live in config/schedule.py (one place).
from config.schedule import BEAT_SCHEDULE as CELERY_BEAT_SCHEDULE  # noqa: E402, F401

# Notifications (SMS / e-mail): console in the demo.
NOTIFICATION_BACKEND = env("NOTIFICATION_BACKEND", default="core.notify.ConsoleBackend")

# Lockout (SECURITY.md G9): 5 failures within LOGIN_FAILURE_WINDOW (15 min)
# lock the username for AXES_COOLOFF_TIME (30 min). Axes alone would count
# failures over the whole cool-off (each failure within 30 min of the one
# before); accounts.lockout.WindowedLockoutHandler keeps the two periods apart,
# deciding from axes' failure log (kept no longer than the two periods).
AXES_HANDLER = "accounts.lockout.WindowedLockoutHandler"
AXES_FAILURE_LIMIT = 5
LOGIN_FAILURE_WINDOW = timedelta(minutes=15)
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# axes trims a user's failure log beyond this many rows, newest first; ours
# is pruned by age instead, so keep axes' trim out of the way.
AXES_ACCESS_FAILURE_LOG_PER_USER_LIMIT = 100_000
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked.html"
AXES_USERNAME_FORM_FIELD = "username"
# What was typed as a username may be a mistyped password or an ID number:
# keep it out of axes' log lines and stored POST data (SECURITY.md G15).
AXES_SENSITIVE_PARAMETERS = ["password", "username"]
# axes.W006: lockout is per account (等保 CES1-02): township offices share
# one NAT address, so locking an IP would lock a whole health centre out.
# models.W040: SQLite (the single-machine default) builds covering indexes
# (patients.Patient's patient_region_cover) on their key columns only.
SILENCED_SYSTEM_CHECKS = ["axes.W006", "models.W040"]

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

# Security headers (production tightens the transport ones).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
