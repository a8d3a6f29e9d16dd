"""Division codes (accounts.rules, Region.clean) and the Django admin pages
for regions and organisations (README → Setting up a real county)."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from accounts import rules
from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.tests import factories as af
from audit.models import AuditEvent

# --- rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "level", "parent", "parent_level"),
    [
        ("990000", "province", None, None),
        ("990100", "city", "990000", "province"),
        ("990102", "county", "990100", "city"),
        ("429004", "county", "420000", "province"),  # 省直辖县级市 (仙桃市)
        ("990102001", "township", "990102", "county"),
        ("990102001001", "village", "990102001", "township"),
    ],
)
def test_well_formed_codes_pass(code, level, parent, parent_level):
    rules.check_region_code(code, level, parent, parent_level)


@pytest.mark.parametrize(
    ("code", "level", "parent", "parent_level", "field", "message"),
    [
        ("99000", "province", None, None, "code", "省级区划代码应为6位数字。"),
        ("9901020010", "township", "990102", "county", "code", "乡镇级区划代码应为9位数字。"),
        (
            "99010200100",
            "village",
            "990102001",
            "township",
            "code",
            "村（居）级区划代码应为12位数字。",
        ),
        ("990102", "township", "990102", "county", "code", "乡镇级区划代码应为9位数字。"),
        ("99A100", "city", "990000", "province", "code", rules.ERR_CODE_DIGITS),
        ("990100", "province", None, None, "code", rules.ERR_CODE_PROVINCE),
        ("990000", "city", "990000", "province", "code", rules.ERR_CODE_CITY),
        ("990101", "city", "990000", "province", "code", rules.ERR_CODE_CITY),
        ("990100", "county", "990000", "province", "code", rules.ERR_CODE_COUNTY),
        ("990102000", "township", "990102", "county", "code", "乡镇级区划代码的后三位不能是000。"),
        ("990000", "province", "990000", "province", "parent", rules.ERR_PROVINCE_PARENT),
        ("990102", "county", None, None, "parent", rules.ERR_PARENT_REQUIRED),
        (
            "990102001001",
            "village",
            "990102",
            "county",
            "parent",
            "村（居）级区划的上级应为乡镇级区划。",
        ),
        (
            "990103001",
            "township",
            "990102",
            "county",
            "code",
            "区划代码应以上级区划代码的前6位“990102”开头。",
        ),
        (
            "980100",
            "city",
            "990000",
            "province",
            "code",
            "区划代码应以上级区划代码的前2位“99”开头。",
        ),
        (
            "990202",
            "county",
            "990100",
            "city",
            "code",
            "区划代码应以上级区划代码的前4位“9901”开头。",
        ),
        (
            "990102002001",
            "village",
            "990102001",
            "township",
            "code",
            "区划代码应以上级区划代码的前9位“990102001”开头。",
        ),
        ("990102", "district", "990100", "city", "level", rules.ERR_LEVEL_UNKNOWN),
    ],
)
def test_malformed_codes_are_refused_naming_the_field(
    code, level, parent, parent_level, field, message
):
    with pytest.raises(rules.RegionCodeError) as exc:
        rules.check_region_code(code, level, parent, parent_level)
    assert exc.value.field == field
    assert str(exc.value.message) == str(message)


@pytest.mark.parametrize(
    ("code", "level", "parents"),
    [
        ("990000", "province", ()),
        ("990100", "city", ("990000",)),
        ("990102", "county", ("990100", "990000")),
        ("990102001", "township", ("990102",)),
        ("990102001001", "village", ("990102001",)),
        ("9901", None, ()),
    ],
)
def test_codes_imply_their_level_and_parent(code, level, parents):
    assert rules.level_for_code(code) == level
    if level:
        assert rules.parent_code_candidates(code, level) == parents


def test_level_code_lengths_are_6_9_12():
    from accounts.models import LEVEL_CODE_LENGTH

    assert LEVEL_CODE_LENGTH == {
        RegionLevel.PROVINCE: 6,
        RegionLevel.CITY: 6,
        RegionLevel.COUNTY: 6,
        RegionLevel.TOWNSHIP: 9,
        RegionLevel.VILLAGE: 12,
    }


# --- Region.clean ---------------------------------------------------------------------


@pytest.mark.django_db
def test_region_clean_enforces_length_and_parent_prefix():
    county, (town, _t2) = af.county_tree("990102", townships=2, villages=1)
    Region(code="990102009", name="新镇", level=RegionLevel.TOWNSHIP, parent=county).full_clean()
    with pytest.raises(ValidationError) as exc:
        Region(code="99010209", name="短码", level=RegionLevel.TOWNSHIP, parent=county).full_clean()
    assert exc.value.message_dict == {"code": ["乡镇级区划代码应为9位数字。"]}
    with pytest.raises(ValidationError) as exc:
        Region(
            code="990103009", name="错县", level=RegionLevel.TOWNSHIP, parent=county
        ).full_clean()
    assert exc.value.message_dict == {"code": ["区划代码应以上级区划代码的前6位“990102”开头。"]}
    with pytest.raises(ValidationError) as exc:
        Region(
            code="990102009001", name="村", level=RegionLevel.VILLAGE, parent=county
        ).full_clean()
    assert "parent" in exc.value.message_dict


@pytest.mark.django_db
def test_seeded_and_test_regions_all_pass_clean():

    call_command("seed_demo", "--patients", "120", stdout=io.StringIO())
    af.county_tree("990103", townships=1, villages=2)
    for region in Region.objects.select_related("parent"):
        region.full_clean(validate_unique=False)
    for org in Organisation.objects.all():
        org.full_clean(validate_unique=False)


@pytest.mark.django_db
def test_organisation_kind_must_fit_its_department():
    county, _towns = af.county_tree("990102", townships=1, villages=1)
    org = Organisation(
        name="某派出所", department="health", kind=OrganisationKind.POLICE_STATION, region=county
    )
    with pytest.raises(ValidationError) as exc:
        org.full_clean()
    assert exc.value.message_dict == {"department": ["该类型的机构应属于“公安”部门。"]}
    org.department = "police"
    org.full_clean()
    rehab = Organisation(
        name="康复站",
        department="civil_affairs",
        kind=OrganisationKind.REHAB_INSTITUTION,
        region=county,
    )
    rehab.full_clean()


# --- Django admin -------------------------------------------------------------------


def admin_client(client, user):
    return af.login(client, user)


@pytest.mark.django_db
def test_the_admin_role_lists_the_regions_of_its_county_only(client, world):
    admin_client(client, world.users.admin)
    response = client.get("/admin/accounts/region/?all=")
    assert response.status_code == 200
    page = response.content.decode()
    assert "990102001001" in page and "990103001" not in page
    index = client.get("/admin/").content.decode()
    assert "/admin/accounts/region/" in index and "/admin/accounts/organisation/" in index


@pytest.mark.django_db
def test_the_admin_adds_a_village_with_a_checked_code(client, world):
    admin_client(client, world.users.admin)
    url = "/admin/accounts/region/add/"
    data = {
        "code": "99010200100",
        "name": "新村",
        "level": RegionLevel.VILLAGE,
        "parent": world.a1.code,
        "population": "1200",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "村（居）级区划代码应为12位数字。" in response.content.decode()
    assert not Region.objects.filter(name="新村").exists()

    data["code"] = "990102002009"  # township A2's prefix under A1
    response = client.post(url, data)
    assert "区划代码应以上级区划代码的前9位“990102001”开头。" in response.content.decode()

    data["code"] = "990102001009"
    response = client.post(url, data)
    assert response.status_code == 302
    village = Region.objects.get(code="990102001009")
    assert village.path == f"{world.a1.path}990102001009/"
    assert AuditEvent.objects.filter(
        action="admin.region_create", object_id="990102001009", actor=world.users.admin
    ).exists()


@pytest.mark.django_db
def test_the_admin_cannot_place_a_region_outside_its_county(client, world):
    admin_client(client, world.users.admin)
    response = client.post(
        "/admin/accounts/region/add/",
        {"code": "990103009", "name": "外县镇", "level": "township", "parent": "990103"},
    )
    assert response.status_code == 200
    assert not Region.objects.filter(code="990103009").exists()
    assert client.get("/admin/accounts/region/990103/change/").status_code == 302  # not found


@pytest.mark.django_db
def test_a_region_keeps_its_code_level_and_parent_once_created(client, world):
    admin_client(client, world.users.admin)
    url = f"/admin/accounts/region/{world.a1.code}/change/"
    response = client.post(
        url,
        {"code": "990102009", "name": "城关镇（新）", "level": "village", "population": "99"},
    )
    assert response.status_code == 302
    world.a1.refresh_from_db()
    assert (world.a1.name, world.a1.level, world.a1.population) == ("城关镇（新）", "township", 99)
    assert not Region.objects.filter(code="990102009").exists()
    assert client.post(f"/admin/accounts/region/{world.a1.code}/delete/").status_code == 403


@pytest.mark.django_db
def test_the_admin_adds_an_organisation_with_history(client, world):
    admin_client(client, world.users.admin)
    url = "/admin/accounts/organisation/add/"
    data = {
        "name": "A3卫生院",
        "department": "police",
        "kind": OrganisationKind.HEALTH_CENTRE,
        "region": world.a2.code,
        "phone": "",
        "is_active": "on",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "该类型的机构应属于“卫生健康”部门。" in response.content.decode()
    data["department"] = "health"
    assert client.post(url, data).status_code == 302
    org = Organisation.objects.get(name="A3卫生院")
    latest = org.history.first()
    assert latest.history_user == world.users.admin
    assert latest.history_change_reason == "organisation.created"
    data["region"] = world.c1.code  # another county
    data["name"] = "C外卫生院"
    assert client.post(url, data).status_code == 200
    assert not Organisation.objects.filter(name="C外卫生院").exists()


@pytest.mark.django_db
def test_other_roles_have_no_region_admin(client, world):
    af.login(client, world.users.doctor_a)
    response = client.get("/admin/accounts/region/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.logout()
    af.login(client, world.users.admin)
    # staff accounts are shown, not edited, in Django admin
    response = client.get("/admin/accounts/staffprofile/")
    assert response.status_code == 200
    assert client.get("/admin/accounts/staffprofile/add/").status_code == 403
