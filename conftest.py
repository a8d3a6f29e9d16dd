"""Shared fixtures: the personas of STYLE.md §5 in a small two-county world.

County A (990102) has townships A1 (990102001) and A2 (990102002); county C
(990103) has township C1. Each persona is named by role and scope.
"""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright sync API + ORM

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def _using_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(_redis_url(), socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def _browser_available() -> bool:
    return os.path.exists(CHROMIUM) or bool(shutil.which(CHROMIUM))


def pytest_report_header(config):
    lines = []
    if _using_postgres():
        lines.append("database: PostgreSQL")
    else:
        lines.append(
            "!!!!! database: SQLite — PostgreSQL-only tests are SKIPPED. "
            "Set DATABASE_URL or start PostgreSQL on 127.0.0.1:5432 to run them. !!!!!"
        )
    if not _browser_available():
        lines.append(f"!!!!! no Chromium at {CHROMIUM}: browser tests are SKIPPED !!!!!")
    if not _redis_up():
        lines.append("!!!!! no Redis on loopback: real-worker Celery tests are SKIPPED !!!!!")
    return lines


def pytest_collection_modifyitems(config, items):
    require_pg = os.environ.get("REQUIRE_POSTGRES") == "1"
    require_browser = os.environ.get("REQUIRE_BROWSER") == "1"
    require_redis = os.environ.get("REQUIRE_REDIS") == "1"
    if require_pg and not _using_postgres():
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but the tests would run on SQLite")
    if require_browser and not _browser_available():
        raise pytest.UsageError(f"REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM}")
    if require_redis and not _redis_up():
        raise pytest.UsageError("REQUIRE_REDIS=1 but Redis does not answer on loopback")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (running on SQLite)")
    skip_browser = pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM}")
    skip_redis = pytest.mark.skip(reason="needs Redis on loopback")
    pg, browser, redis_ok = _using_postgres(), _browser_available(), _redis_up()
    for item in items:
        if "postgres" in item.keywords and not pg:
            item.add_marker(skip_pg)
        if "browser" in item.keywords and not browser:
            item.add_marker(skip_browser)
        if "celery_worker" in item.keywords and not redis_ok:
            item.add_marker(skip_redis)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_sep(
            "!", f"{len(skipped)} tests SKIPPED (see the header for why)", red=True, bold=True
        )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # Chinese is the interface language: browse as a county user would
    # (Playwright's default Accept-Language is English, which now translates).
    return {**browser_context_args, "locale": "zh-CN"}


@pytest.fixture(autouse=True)
def _fresh_factory_sequence():
    """Each test numbers its patients from 1: the ID numbers and birth days
    the factories make then do not depend on which tests ran before in the
    same process (every test starts from an empty database anyway)."""
    import itertools

    from patients.tests import factories as pf

    pf._seq = itertools.count(1)


@pytest.fixture
def redis_url():
    return _redis_url()


@pytest.fixture
def world(db):
    """Regions, organisations and one persona per role and scope."""
    from accounts.models import OrganisationKind as K
    from accounts.roles import Role
    from accounts.tests import factories as af

    county_a, (a1, a2) = af.county_tree("990102", townships=2, villages=2)
    county_c, (c1,) = af.county_tree("990103", townships=1, villages=2)
    org = SimpleNamespace(
        hc_a1=af.organisation("A1卫生院", K.HEALTH_CENTRE, a1),
        hc_a2=af.organisation("A2卫生院", K.HEALTH_CENTRE, a2),
        hc_c1=af.organisation("C1卫生院", K.HEALTH_CENTRE, c1),
        hospital_a=af.organisation("A专科医院", K.SPECIALIST_HOSPITAL, county_a),
        prevention_a=af.organisation("A精防中心", K.PREVENTION_AGENCY, county_a),
        ps_a1=af.organisation("A1派出所", K.POLICE_STATION, a1),
        ps_a2=af.organisation("A2派出所", K.POLICE_STATION, a2),
        pb_a=af.organisation("A公安局", K.POLICE_BUREAU, county_a),
        gov_a1=af.organisation("A1综治办", K.GOVERNANCE_OFFICE, a1),
        gov_a2=af.organisation("A2综治办", K.GOVERNANCE_OFFICE, a2),
        gov_a=af.organisation("A县综治办", K.GOVERNANCE_OFFICE, county_a),
        civil_a=af.organisation("A民政局", K.CIVIL_AFFAIRS_BUREAU, county_a),
        dpf_a=af.organisation("A残联", K.FEDERATION, county_a),
        finance_a=af.organisation("A财政局", K.FINANCE_BUREAU, county_a),
        bureau_a=af.organisation("A卫健局", K.HEALTH_BUREAU, county_a),
    )
    u = SimpleNamespace(
        doctor_a=af.staff("doctor_a", Role.TOWNSHIP_DOCTOR, org.hc_a1),
        doctor_b=af.staff("doctor_b", Role.TOWNSHIP_DOCTOR, org.hc_a2),
        doctor_c=af.staff("doctor_c", Role.TOWNSHIP_DOCTOR, org.hc_c1),
        hospital=af.staff("hospital_a", Role.HOSPITAL_DOCTOR, org.hospital_a),
        police_a=af.staff("police_a", Role.POLICE, org.ps_a1),
        police_b=af.staff("police_b", Role.POLICE, org.ps_a2),
        governance=af.staff("governance_a", Role.GOVERNANCE, org.gov_a),
        civil=af.staff("civil_a", Role.CIVIL_AFFAIRS, org.civil_a),
        dpf=af.staff("dpf_a", Role.DISABLED_FEDERATION, org.dpf_a),
        finance=af.staff("finance_a", Role.FINANCE, org.finance_a),
        official=af.staff("official_a", Role.OFFICIAL, org.bureau_a),
        admin=af.staff("admin_a", Role.ADMIN, org.bureau_a),
    )
    return SimpleNamespace(
        county_a=county_a, a1=a1, a2=a2, county_c=county_c, c1=c1, org=org, users=u
    )


@pytest.fixture
def patients(world):
    """pA1 in township A1, pB1 in township A2, pC1 in county C."""
    from patients.tests import factories as pf

    u = world.users
    return SimpleNamespace(
        pA1=pf.patient(by=u.doctor_a, village="990102001001", name="甲一"),
        pB1=pf.patient(by=u.doctor_b, village="990102002001", name="乙一"),
        pC1=pf.patient(by=u.doctor_c, village="990103001001", name="丙一"),
    )
