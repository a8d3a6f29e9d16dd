"""Clues (线索): suspected cases awaiting diagnosis review (诊断复核),
DOMAIN-SOURCES.md §1.9 table 2."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Organisation, Region
from core.fields import EncryptedCharField
from patients.models import Diagnosis, Gender, IdType, Patient


class ClueSource(models.TextChoices):
    SCREENING = "screening", _("筛查")
    HOSPITAL_REPORT = "hospital_report", _("医院报告")
    POLICE = "police", _("公安")
    CIVIL_AFFAIRS = "civil_affairs", _("民政")
    DISABLED_FEDERATION = "disabled_federation", _("残联")
    GRID_WORKER = "grid_worker", _("网格员")
    HOTLINE = "hotline", _("心理援助热线")
    FAMILY = "family", _("家属报告")
    RECONCILIATION = "reconciliation", _("信息比对")


class ClueStatus(models.TextChoices):
    OPEN = "open", _("待复核")
    CONFIRMED = "confirmed", _("已确诊并登记")
    CLOSED = "closed", _("已关闭")


class ClueCloseReason(models.TextChoices):
    NOT_SMD = "not_smd", _("复核排除严重精神障碍")
    ALREADY_REGISTERED = "already_registered", _("已在册")
    NOT_FOUND = "not_found", _("查无此人")
    MOVED_AWAY = "moved_away", _("已离开本辖区")
    DECEASED = "deceased", _("已死亡")
    REFUSED_REVIEW = "refused_review", _("拒绝复核")
    OTHER = "other", _("其他")


class Clue(models.Model):
    """A suspected case reported by screening or another department.

    Assigned to the health centre of its township; diagnosis review turns it
    into a patient (``patient``) or closes it with a reason."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(_("来源"), max_length=20, choices=ClueSource.choices)
    name = models.CharField(_("姓名"), max_length=50)
    gender = models.CharField(_("性别"), max_length=6, choices=Gender.choices, blank=True)
    birth_date = models.DateField(_("出生日期"), null=True, blank=True)
    id_type = models.CharField(
        _("证件类型"), max_length=12, choices=IdType.choices, default=IdType.RESIDENT_ID
    )
    id_number = EncryptedCharField(_("证件号码"), max_plain_length=32, blank=True)
    id_number_index = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    region = models.ForeignKey(
        Region, verbose_name=_("所在区划"), on_delete=models.PROTECT, related_name="+"
    )
    address = models.CharField(_("住址"), max_length=200, blank=True)
    phone = EncryptedCharField(_("联系电话"), max_plain_length=32, blank=True)
    description = models.TextField(_("异常表现"), blank=True)
    reporter_name = models.CharField(_("报告人"), max_length=50, blank=True)
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("报告单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    assigned_organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("负责复核的卫生院"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_clues",
    )
    status = models.CharField(
        _("状态"), max_length=10, choices=ClueStatus.choices, default=ClueStatus.OPEN
    )
    # diagnosis review
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("复核时间"), null=True, blank=True)
    review_hospital = models.CharField(_("复核医院"), max_length=100, blank=True)
    review_diagnosis = models.CharField(
        _("复核诊断"), max_length=32, choices=Diagnosis.choices, blank=True
    )
    close_reason = models.CharField(
        _("关闭原因"), max_length=20, choices=ClueCloseReason.choices, blank=True
    )
    close_note = models.CharField(_("关闭说明"), max_length=200, blank=True)
    patient = models.ForeignKey(
        Patient,
        verbose_name=_("登记患者"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reconciliation_run = models.ForeignKey(
        "referrals.ReconciliationRun",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clues",
    )
    # a natural key for clues raised by a machine (reconciliation): one open
    # clue per person, however many lists name them
    dedupe_key = models.CharField(max_length=80, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("报告时间"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("线索")
        verbose_name_plural = _("线索")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["assigned_organisation", "status"], name="clue_assigned_status"),
            models.Index(fields=["organisation", "status"], name="clue_org_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.created_at:%Y-%m-%d}"

    @property
    def awaits_township(self) -> bool:
        """Not with a township health centre yet: held by the county
        prevention agency (or nobody) until it is placed in a township."""
        org = self.assigned_organisation
        return org is None or org.kind != "health_centre"

    @property
    def id_number_masked(self) -> str:
        from patients.rules import mask_id_number

        return mask_id_number(self.id_number)
