"""``manage.py import_regions``: a real county from CSV or Excel, checked
all or nothing, idempotent (README → Setting up a real county)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from audit.models import AuditEvent

REGIONS_CSV = """区划代码,名称,级别,上级区划代码,常住人口
420000,湖北省,省,,
420100,武汉市,市,420000,
420102,江岸区,区,420100,"1,020,000"
420102001,大智街道,街道,420102,52000
420102001001,大智社区,社区,420102001,6000
420102001002,球场社区,社区,420102001,7000
429004,仙桃市,县,420000,1130000
429004100,沙嘴街道,乡镇,429004,90000
"""
ORGANISATIONS_CSV = """name,department,kind,region,phone
江岸区卫生健康局,卫生健康,health_bureau,420102,027-1
大智街道社区卫生服务中心,health,乡镇卫生院/社区卫生服务中心,420102001,
大智派出所,公安,派出所,420102001,
江岸区残联,,federation,420102,
"""


def write(tmp_path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_regions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fail(*args) -> list[str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("import_regions", *args, stdout=io.StringIO(), stderr=err)
    assert "未写入任何数据" in str(exc.value)
    return err.getvalue().splitlines()


@pytest.mark.django_db
def test_import_builds_the_tree_and_organisations(tmp_path):
    regions = write(tmp_path, "regions.csv", REGIONS_CSV)
    orgs = write(tmp_path, "orgs.csv", ORGANISATIONS_CSV)

    out, _err = run(regions, "--organisations", orgs)

    assert "新增8" in out and "新增4" in out
    county = Region.objects.get(code="420102")
    assert (county.name, county.level, county.population) == ("江岸区", "county", 1020000)
    village = Region.objects.get(code="420102001002")
    assert village.level == RegionLevel.VILLAGE
    assert village.path == "/420000/420100/420102/420102001/420102001002/"
    assert Region.objects.get(code="429004").parent_id == "420000"  # directly under the province
    centre = Organisation.objects.get(name="大智街道社区卫生服务中心")
    assert (centre.department, centre.kind, centre.region_id) == (
        "health",
        "health_centre",
        "420102001",
    )
    assert Organisation.objects.get(name="大智派出所").department == "police"
    # the department follows from the kind when left empty
    assert Organisation.objects.get(name="江岸区残联").department == "disabled_federation"
    assert centre.history.first().history_change_reason == "organisation.imported"
    event = AuditEvent.objects.get(action="admin.regions_import")
    assert event.detail["regions"]["created"] == 8


@pytest.mark.django_db
def test_a_second_import_changes_nothing_and_a_third_updates(tmp_path):
    regions = write(tmp_path, "regions.csv", REGIONS_CSV)
    orgs = write(tmp_path, "orgs.csv", ORGANISATIONS_CSV)
    run(regions, "--organisations", orgs)
    before = (Region.objects.count(), Organisation.objects.count(), AuditEvent.objects.count())

    out, _err = run(regions, "--organisations", orgs)

    assert "未变8" in out and "未变4" in out
    assert (Region.objects.count(), Organisation.objects.count(), AuditEvent.objects.count()) == (
        before
    )
    changed = REGIONS_CSV.replace("球场社区,社区,420102001,7000", "球场路社区,社区,420102001,7100")
    out, _err = run(write(tmp_path, "regions2.csv", changed))
    assert "更新1" in out
    assert Region.objects.get(code="420102001002").name == "球场路社区"
    assert Region.objects.get(code="420102001002").population == 7100


@pytest.mark.django_db
def test_one_bad_row_writes_nothing_and_is_named(tmp_path):
    bad = REGIONS_CSV.replace("420102001002,球场社区", "42010200102,球场社区")
    errors = fail(write(tmp_path, "regions.csv", bad))
    assert errors == ["regions.csv 第7行“code”：村（居）级区划代码应为12位数字。"]
    assert not Region.objects.exists()


@pytest.mark.django_db
def test_every_error_is_listed_with_row_and_column(tmp_path):
    regions = write(
        tmp_path,
        "regions.csv",
        """code,name,level,parent,population
420000,湖北省,province,,
420100,武汉市,city,420000,-5
420100,重复,city,420000,
420102,,county,420100,
420103,江汉区,county,990100,
420104,硚口区,区县,420100,
420105001,某街道,township,420106,
""",
    )
    orgs = write(
        tmp_path,
        "orgs.csv",
        """name,department,kind,region
某医院,health,hospital,420100
某派出所,health,police_station,420100
某局,health,health_bureau,999999
某局2,,other,420100
""",
    )
    errors = fail(regions, "--organisations", orgs)
    assert errors == [
        "regions.csv 第3行“population”：人口应为不小于0的整数。",
        "regions.csv 第4行“code”：区划代码 420100 在文件中重复（另见第3行）。",
        "regions.csv 第5行“name”：不能为空。",
        "regions.csv 第6行“parent”：上级区划 990100 在文件和系统中都不存在。",
        "regions.csv 第7行“level”：无法识别的级别“区县”。",
        "regions.csv 第8行“parent”：上级区划 420106 在文件和系统中都不存在。",
        "orgs.csv 第2行“kind”：无法识别的值“hospital”，可填："
        + "、".join(str(c.label) for c in OrganisationKind)
        + "。",
        "orgs.csv 第3行“department”：该类型的机构应属于“公安”部门。",
        "orgs.csv 第4行“region”：区划 999999 在文件和系统中都不存在。",
        "orgs.csv 第5行“department”：不能为空。",
    ]
    assert not Region.objects.exists() and not Organisation.objects.exists()


@pytest.mark.django_db
def test_missing_columns_are_named(tmp_path):
    errors = fail(write(tmp_path, "regions.csv", "名称,级别\n湖北省,省\n"))
    assert errors == ["regions.csv：缺少必需的列：code。"]


@pytest.mark.django_db
def test_a_region_is_never_moved_or_relevelled_by_an_import(world, tmp_path):
    errors = fail(
        write(
            tmp_path,
            "regions.csv",
            "code,name,parent\n990102001,城关镇,990100\n990102002,东山乡,\n",
        )
    )
    assert errors[0].startswith("regions.csv 第2行“parent”：")
    assert len(errors) == 1  # 990102002's parent follows from its code


@pytest.mark.django_db
def test_an_excel_workbook_with_both_sheets_and_derived_levels(world, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.title = "行政区划"
    sheet.append(["代码", "名称", "人口"])
    sheet.append(["990102003", "西河乡", 110000])
    sheet.append(["990102003001", "西河村", 20000.0])
    orgs = book.create_sheet("机构")
    orgs.append(["机构名称", "部门", "机构类型", "辖区代码"])
    orgs.append(["西河乡卫生院", "卫生健康", "health_centre", 990102003])
    path = tmp_path / "county.xlsx"
    book.save(path)

    out, _err = run(str(path))

    town = Region.objects.get(code="990102003")
    assert (town.level, town.parent_id, town.population) == ("township", "990102", 110000)
    assert Region.objects.get(code="990102003001").parent_id == "990102003"
    assert Organisation.objects.get(name="西河乡卫生院").region_id == "990102003"
    assert "新增2" in out and "新增1" in out


@pytest.mark.django_db
def test_a_csv_saved_by_chinese_excel_reads_as_gb18030(tmp_path):
    path = write(tmp_path, "regions.csv", REGIONS_CSV, encoding="gb18030")
    run(path)
    assert Region.objects.get(code="420102001001").name == "大智社区"


@pytest.mark.django_db
def test_dry_run_checks_and_writes_nothing(tmp_path):
    out, _err = run(write(tmp_path, "regions.csv", REGIONS_CSV), "--dry-run")
    assert "检查通过" in out
    assert not Region.objects.exists()


@pytest.mark.django_db
def test_other_file_types_are_refused(tmp_path):
    errors = fail(write(tmp_path, "regions.txt", REGIONS_CSV))
    assert errors == ["只能导入 .csv 或 .xlsx 文件。"]
