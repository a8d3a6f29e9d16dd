"""Regions (administrative divisions), organisations, departments and staff."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class RegionLevel(models.TextChoices):
    PROVINCE = "province", _("省")
    CITY = "city", _("市")
    COUNTY = "county", _("县")
    TOWNSHIP = "township", _("乡镇")
    VILLAGE = "village", _("村（居）")


LEVEL_CODE_LENGTH = {
    RegionLevel.PROVINCE: 6,
    RegionLevel.CITY: 6,
    RegionLevel.COUNTY: 6,
    RegionLevel.TOWNSHIP: 9,
    RegionLevel.VILLAGE: 12,
}


class Region(models.Model):
    """An administrative division (GB/T 2260 + statistical division codes).

    ``path`` is the materialised ancestor path, ``/990000/990100/990102/``:
    zero-padded division codes are not string prefixes of their children
    (990000 vs 990102), so "inside" is ``path LIKE ancestor.path || '%'``.
    """

    code = models.CharField(_("区划代码"), max_length=12, primary_key=True)
    name = models.CharField(_("名称"), max_length=64)
    level = models.CharField(_("级别"), max_length=10, choices=RegionLevel.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    path = models.CharField(_("路径"), max_length=80, unique=True, editable=False)
    population = models.PositiveIntegerField(_("常住人口"), null=True, blank=True)

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]
        permissions = [
            ("view_patients_in", _("查看辖区内患者")),
            ("manage_patients_in", _("登记和管理辖区内患者")),
            ("view_aggregates_in", _("查看辖区统计数据")),
        ]
        # path is unique, so Django also builds the varchar_pattern_ops index
        # that serves ``path LIKE 'prefix%'`` on PostgreSQL.

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.path = self.compute_path()
        super().save(*args, **kwargs)

    def compute_path(self) -> str:
        base = self.parent.path if self.parent_id else "/"
        return f"{base}{self.code}/"

    @property
    def county_code(self) -> str | None:
        parts = [p for p in self.path.strip("/").split("/") if p]
        for code in parts:
            if len(code) == 6 and not code.endswith("00"):
                return code
        return None


class Department(models.TextChoices):
    HEALTH = "health", _("卫生健康")
    POLICE = "police", _("公安")
    GOVERNANCE = "governance", _("综治")
    CIVIL_AFFAIRS = "civil_affairs", _("民政")
    DISABLED_FEDERATION = "disabled_federation", _("残联")
    FINANCE = "finance", _("财政")


class OrganisationKind(models.TextChoices):
    HEALTH_CENTRE = "health_centre", _("乡镇卫生院/社区卫生服务中心")
    SPECIALIST_HOSPITAL = "specialist_hospital", _("精神专科医院")
    PREVENTION_AGENCY = "prevention_agency", _("精神卫生防治机构")
    HEALTH_BUREAU = "health_bureau", _("卫生健康局")
    POLICE_STATION = "police_station", _("派出所")
    POLICE_BUREAU = "police_bureau", _("公安局")
    GOVERNANCE_OFFICE = "governance_office", _("综治办")
    CIVIL_AFFAIRS_BUREAU = "civil_affairs_bureau", _("民政局")
    FEDERATION = "federation", _("残联")
    FINANCE_BUREAU = "finance_bureau", _("财政局")
    REHAB_INSTITUTION = "rehab_institution", _("社区康复机构")
    OTHER = "other", _("其他")


class Organisation(models.Model):
    """A unit of one department in one region; its region is its jurisdiction."""

    name = models.CharField(_("名称"), max_length=100)
    department = models.CharField(_("部门"), max_length=24, choices=Department.choices)
    kind = models.CharField(_("类型"), max_length=24, choices=OrganisationKind.choices)
    region = models.ForeignKey(
        Region, verbose_name=_("辖区"), on_delete=models.PROTECT, related_name="organisations"
    )
    phone = models.CharField(_("电话"), max_length=32, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("机构")
        verbose_name_plural = _("机构")
        ordering = ["region_id", "department", "name"]
        constraints = [
            models.UniqueConstraint(fields=["region", "name"], name="organisation_unique_name")
        ]
        indexes = [models.Index(fields=["department", "region"], name="org_department_region")]

    def __str__(self) -> str:
        return self.name


class StaffProfile(models.Model):
    """Links a Django user to exactly one organisation."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff"
    )
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("机构"), on_delete=models.PROTECT, related_name="staff"
    )
    display_name = models.CharField(_("姓名"), max_length=50, blank=True)
    phone = models.CharField(_("电话"), max_length=32, blank=True)
    password_changed_at = models.DateTimeField(_("密码修改时间"), null=True, blank=True)
    # Bumped on password or role change: sessions carrying an older epoch end.
    session_epoch = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("工作人员")
        verbose_name_plural = _("工作人员")

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()
