"""Pure rules of the administrative tree (DOMAIN.md → regions). No ORM here.

Division codes (GB/T 2260, and the statistical division codes below the
county): a province is ``PP0000``, a city ``PPCC00``, a county ``PPCCDD``
(6 digits), a township the county code plus 3 digits (9), a village the
township code plus 3 digits (12). A child's code starts with the
significant part of its parent's code: 2 digits of a province, 4 of a city,
all of a county or township. A county may sit directly under its province
(省直辖县级行政单位, e.g. 429004), so only the province prefix binds it then.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

PROVINCE, CITY, COUNTY, TOWNSHIP, VILLAGE = "province", "city", "county", "township", "village"
LEVELS = (PROVINCE, CITY, COUNTY, TOWNSHIP, VILLAGE)
CODE_LENGTH = {PROVINCE: 6, CITY: 6, COUNTY: 6, TOWNSHIP: 9, VILLAGE: 12}
# How many leading digits of a region of this level its children share.
SIGNIFICANT_DIGITS = {PROVINCE: 2, CITY: 4, COUNTY: 6, TOWNSHIP: 9, VILLAGE: 12}
PARENT_LEVELS = {
    PROVINCE: (),
    CITY: (PROVINCE,),
    COUNTY: (CITY, PROVINCE),
    TOWNSHIP: (COUNTY,),
    VILLAGE: (TOWNSHIP,),
}
LEVEL_NAMES = {
    PROVINCE: _("省级"),
    CITY: _("市级"),
    COUNTY: _("县级"),
    TOWNSHIP: _("乡镇级"),
    VILLAGE: _("村（居）级"),
}

ERR_CODE_DIGITS = _("区划代码只能包含数字。")
ERR_CODE_LENGTH = _("%(level)s区划代码应为%(length)d位数字。")
ERR_CODE_PROVINCE = _("省级区划代码的后四位应为0000。")
ERR_CODE_CITY = _("市级区划代码的第3-4位不能是00，后两位应为00。")
ERR_CODE_COUNTY = _("县级区划代码的后两位不能是00。")
ERR_CODE_LOCAL = _("%(level)s区划代码的后三位不能是000。")
ERR_LEVEL_UNKNOWN = _("未知的区划级别。")
ERR_PROVINCE_PARENT = _("省级区划没有上级区划。")
ERR_PARENT_REQUIRED = _("请填写上级区划。")
ERR_PARENT_LEVEL = _("%(level)s区划的上级应为%(parents)s区划。")
ERR_PARENT_PREFIX = _("区划代码应以上级区划代码的前%(digits)d位“%(prefix)s”开头。")


class RegionCodeError(ValueError):
    """A code that does not fit its level or its parent; ``field`` is the
    form field to name (``code``, ``level`` or ``parent``)."""

    def __init__(self, message, *, field: str):
        super().__init__(str(message))
        self.message = message
        self.field = field


def level_for_code(code: str) -> str | None:
    """The level a well-formed code implies (None when it implies none)."""
    if not code.isdigit():
        return None
    if len(code) == 12:
        return VILLAGE
    if len(code) == 9:
        return TOWNSHIP
    if len(code) == 6:
        if code.endswith("0000"):
            return PROVINCE
        if code.endswith("00"):
            return CITY
        return COUNTY
    return None


def parent_code_candidates(code: str, level: str) -> tuple[str, ...]:
    """The codes the parent of ``code`` may have, nearest first: a county's
    city, else its province (a county directly under the province)."""
    if level == VILLAGE:
        return (code[:9],)
    if level == TOWNSHIP:
        return (code[:6],)
    if level == COUNTY:
        return (code[:4] + "00", code[:2] + "0000")
    if level == CITY:
        return (code[:2] + "0000",)
    return ()


def check_region_code(
    code: str, level: str, parent_code: str | None = None, parent_level: str | None = None
) -> None:
    """Raise RegionCodeError unless ``code`` fits ``level`` and its parent."""
    if level not in CODE_LENGTH:
        raise RegionCodeError(ERR_LEVEL_UNKNOWN, field="level")
    if not code.isdigit():
        raise RegionCodeError(ERR_CODE_DIGITS, field="code")
    length = CODE_LENGTH[level]
    if len(code) != length:
        raise RegionCodeError(
            ERR_CODE_LENGTH % {"level": LEVEL_NAMES[level], "length": length}, field="code"
        )
    if level == PROVINCE and not code.endswith("0000"):
        raise RegionCodeError(ERR_CODE_PROVINCE, field="code")
    if level == CITY and (code[2:4] == "00" or not code.endswith("00")):
        raise RegionCodeError(ERR_CODE_CITY, field="code")
    if level == COUNTY and code.endswith("00"):
        raise RegionCodeError(ERR_CODE_COUNTY, field="code")
    if level in (TOWNSHIP, VILLAGE) and code.endswith("000"):
        raise RegionCodeError(ERR_CODE_LOCAL % {"level": LEVEL_NAMES[level]}, field="code")
    if level == PROVINCE:
        if parent_code:
            raise RegionCodeError(ERR_PROVINCE_PARENT, field="parent")
        return
    if not parent_code:
        raise RegionCodeError(ERR_PARENT_REQUIRED, field="parent")
    if parent_level not in PARENT_LEVELS[level]:
        parents = " / ".join(str(LEVEL_NAMES[p]) for p in PARENT_LEVELS[level])
        raise RegionCodeError(
            ERR_PARENT_LEVEL % {"level": LEVEL_NAMES[level], "parents": parents}, field="parent"
        )
    digits = SIGNIFICANT_DIGITS[parent_level]
    prefix = parent_code[:digits]
    if not code.startswith(prefix):
        raise RegionCodeError(
            ERR_PARENT_PREFIX % {"digits": digits, "prefix": prefix}, field="code"
        )


# --- organisations ---------------------------------------------------------------

# The department an organisation of a kind belongs to; community rehabilitation
# institutions (run by health, civil affairs or the federation) and "other"
# may belong to any.
KIND_DEPARTMENT = {
    "health_centre": "health",
    "specialist_hospital": "health",
    "prevention_agency": "health",
    "health_bureau": "health",
    "police_station": "police",
    "police_bureau": "police",
    "governance_office": "governance",
    "civil_affairs_bureau": "civil_affairs",
    "federation": "disabled_federation",
    "finance_bureau": "finance",
}

ERR_KIND_DEPARTMENT = _("该类型的机构应属于“%(department)s”部门。")


def kind_fits_department(kind: str, department: str) -> bool:
    expected = KIND_DEPARTMENT.get(kind)
    return expected is None or expected == department
