"""Demo regions, organisations and the ten accounts of API.md."""

from __future__ import annotations

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.roles import Role
from accounts.services import staff_create

COUNTY = "990102"
TOWNSHIPS = [
    ("990102001", "城关镇", 180000, "城关"),
    ("990102002", "东山乡", 120000, "东山"),
    ("990102003", "西河乡", 110000, "西河"),
    ("990102004", "南岭镇", 110000, "南岭"),
]
VILLAGE_NAMES = ["东街社区", "西街社区", "新华村", "红旗村", "和平村", "光明村", "前进村", "幸福村"]
EXTRA_TOWN_PREFIX = ["青山", "白水", "石桥", "柳林", "桃源", "金沙", "长岭", "云溪", "凤凰", "龙泉"]

# username, role, organisation key
ACCOUNTS = [
    ("admin", Role.ADMIN, "bureau", "系统管理员"),
    ("doctor1", Role.TOWNSHIP_DOCTOR, ("health_centre", "990102001"), "李医生"),
    ("doctor2", Role.TOWNSHIP_DOCTOR, ("health_centre", "990102002"), "王医生"),
    ("hospital1", Role.HOSPITAL_DOCTOR, "hospital", "张医生"),
    ("police1", Role.POLICE, ("police_station", "990102001"), "赵警官"),
    ("police2", Role.POLICE, ("police_station", "990102002"), "钱警官"),
    ("governance1", Role.GOVERNANCE, "governance", "孙主任"),
    ("civil1", Role.CIVIL_AFFAIRS, "civil", "周科长"),
    ("dpf1", Role.DISABLED_FEDERATION, "dpf", "吴干事"),
    ("official1", Role.OFFICIAL, "bureau", "郑局长"),
]


def townships_for(n: int) -> list[tuple[str, str, int, str]]:
    """The demo's four townships, then generated ones for benchmarks."""
    out = list(TOWNSHIPS[:n])
    for i in range(len(out), n):
        prefix = EXTRA_TOWN_PREFIX[i % len(EXTRA_TOWN_PREFIX)] + (str(i // 10) if i >= 10 else "")
        out.append((f"{COUNTY}{i + 1:03d}", f"{prefix}镇", 100000, prefix))
    return out


def seed(ctx) -> None:
    rng = ctx.rng
    province = Region.objects.create(code="990000", name="示范省", level=RegionLevel.PROVINCE)
    city = Region.objects.create(
        code="990100", name="示范市", level=RegionLevel.CITY, parent=province
    )
    towns = townships_for(ctx.townships)
    county = Region.objects.create(
        code=COUNTY,
        name="示范县",
        level=RegionLevel.COUNTY,
        parent=city,
        population=sum(t[2] for t in towns),
    )
    orgs: dict = {}
    village_rows = []
    for code, name, population, short in towns:
        town = Region.objects.create(
            code=code, name=name, level=RegionLevel.TOWNSHIP, parent=county, population=population
        )
        n_villages = rng.randint(3, 6)
        # split the population into n parts that sum exactly
        weights = [rng.randint(6, 14) for _ in range(n_villages)]
        parts = [population * w // sum(weights) for w in weights]
        parts[0] += population - sum(parts)
        names = rng.sample(VILLAGE_NAMES, n_villages)
        for i in range(n_villages):
            village_rows.append(
                Region(
                    code=f"{code}{i + 1:03d}",
                    name=f"{short}{names[i]}",
                    level=RegionLevel.VILLAGE,
                    parent=town,
                    population=parts[i],
                    path=f"{town.path}{code}{i + 1:03d}/",
                )
            )
        for kind, org_name in (
            (OrganisationKind.HEALTH_CENTRE, f"{name}卫生院"),
            (OrganisationKind.POLICE_STATION, f"{short}派出所"),
            (OrganisationKind.GOVERNANCE_OFFICE, f"{name}综治办"),
        ):
            dept = {
                OrganisationKind.HEALTH_CENTRE: "health",
                OrganisationKind.POLICE_STATION: "police",
                OrganisationKind.GOVERNANCE_OFFICE: "governance",
            }[kind]
            orgs[(kind.value, code)] = Organisation.objects.create(
                name=org_name, department=dept, kind=kind, region=town
            )
    Region.objects.bulk_create(village_rows)
    county_orgs = {
        "bureau": ("县卫健局", "health", OrganisationKind.HEALTH_BUREAU),
        "hospital": ("示范县精神病专科医院", "health", OrganisationKind.SPECIALIST_HOSPITAL),
        "prevention": ("县精神卫生防治中心", "health", OrganisationKind.PREVENTION_AGENCY),
        "police_bureau": ("县公安局", "police", OrganisationKind.POLICE_BUREAU),
        "governance": ("县委政法委综治办", "governance", OrganisationKind.GOVERNANCE_OFFICE),
        "civil": ("县民政局", "civil_affairs", OrganisationKind.CIVIL_AFFAIRS_BUREAU),
        "dpf": ("县残联", "disabled_federation", OrganisationKind.FEDERATION),
        "finance": ("县财政局", "finance", OrganisationKind.FINANCE_BUREAU),
    }
    for key, (org_name, dept, kind) in county_orgs.items():
        orgs[key] = Organisation.objects.create(
            name=org_name, department=dept, kind=kind, region=county
        )
    for username, role, org_key, display in ACCOUNTS:
        staff_create(
            username=username,
            password=ctx.password,
            organisation=orgs[org_key],
            role=role,
            display_name=display,
            validate=False,
        )
    grant_demo_exports()
    load(ctx)


# The demo shows the exports: these accounts hold the export permission
# (accounts.exports), which in a real county the system admin grants per
# account on the staff page. prevention1 and finance1 are made by the
# referrals and subsidies stages, which call grant_demo_exports() again.
DEMO_EXPORTERS = (
    "doctor1",
    "hospital1",
    "prevention1",
    "governance1",
    "civil1",
    "dpf1",
    "finance1",
    "official1",
)


def grant_demo_exports() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    perm = Permission.objects.get(content_type__app_label="accounts", codename="export_data")
    for user in get_user_model().objects.filter(username__in=DEMO_EXPORTERS):
        user.user_permissions.add(perm)


def load(ctx) -> None:
    ctx.data["county"] = Region.objects.get(code=COUNTY)
    ctx.data["townships"] = list(
        Region.objects.filter(level=RegionLevel.TOWNSHIP, parent_id=COUNTY).order_by("code")
    )
    ctx.data["villages"] = list(
        Region.objects.filter(
            level=RegionLevel.VILLAGE, path__startswith=f"/990000/990100/{COUNTY}/"
        ).order_by("code")
    )
    ctx.data["organisations"] = {
        (o.kind, o.region_id): o
        for o in Organisation.objects.filter(region__path__startswith="/990000/")
    }
