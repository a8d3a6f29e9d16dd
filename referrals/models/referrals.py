"""Two-way referrals and hand-overs (DOMAIN.md → Referrals)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Organisation, Region
from patients.models import Patient


class ReferralKind(models.TextChoices):
    UPWARD = "upward", _("上转（社区→医院）")
    DOWNWARD = "downward", _("下转（医院→社区）")
    REHAB = "rehab", _("转介社区康复")
    TRANSFER = "transfer", _("迁移转出")


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("待接收")
    ACCEPTED = "accepted", _("已接收")
    REJECTED = "rejected", _("已拒绝")
    COMPLETED = "completed", _("已完成")
    CANCELLED = "cancelled", _("已撤销")


OPEN_STATUSES = (ReferralStatus.PENDING, ReferralStatus.ACCEPTED)


class Referral(models.Model):
    """One hand-over of a patient from one organisation to another.

    ``accept_by`` and ``complete_by`` are the deadlines the daily scan checks;
    each step is also an event row (who, when, why)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="referrals")
    kind = models.CharField(_("类型"), max_length=10, choices=ReferralKind.choices)
    status = models.CharField(
        _("状态"), max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.PENDING
    )
    from_organisation = models.ForeignKey(
        Organisation, verbose_name=_("转出机构"), on_delete=models.PROTECT, related_name="+"
    )
    to_organisation = models.ForeignKey(
        Organisation, verbose_name=_("接收机构"), on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(_("转诊原因"))
    green_channel = models.BooleanField(_("绿色通道"), default=False)
    rehab_enrolment = models.ForeignKey(
        "referrals.RehabEnrolment",
        verbose_name=_("康复入组"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="green_channel_referrals",
    )
    # transfer: where the patient moves to (a village inside the receiving township)
    to_region = models.ForeignKey(
        Region,
        verbose_name=_("迁入地区划"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    to_address = models.CharField(_("迁入地址"), max_length=200, blank=True)
    # downward: the discharge information sheet (出院信息单) as data
    discharge_date = models.DateField(_("出院日期"), null=True, blank=True)
    discharge_sheet = models.JSONField(_("出院信息单"), default=dict, blank=True)
    # rehab: consent of patient and guardian
    patient_consent = models.BooleanField(_("患者同意"), default=False)
    guardian_consent = models.BooleanField(_("监护人同意"), default=False)
    consent_date = models.DateField(_("同意日期"), null=True, blank=True)
    # deadlines
    accept_by = models.DateField(_("接收时限"))
    complete_by = models.DateField(_("完成时限"), null=True, blank=True)
    # bookkeeping
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("发起时间"), auto_now_add=True)
    status_changed_at = models.DateTimeField(_("状态变更时间"), auto_now_add=True)
    version = models.PositiveIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("转诊")
        verbose_name_plural = _("转诊")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind"],
                condition=models.Q(status__in=["pending", "accepted"]),
                name="referral_one_open_per_kind",
            )
        ]
        indexes = [
            models.Index(fields=["to_organisation", "status"], name="referral_to_status"),
            models.Index(fields=["from_organisation", "status"], name="referral_from_status"),
            models.Index(fields=["status", "accept_by"], name="referral_status_accept_by"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class ReferralAction(models.TextChoices):
    CREATED = "created", _("发起")
    ACCEPTED = "accepted", _("接收")
    REJECTED = "rejected", _("拒绝")
    COMPLETED = "completed", _("完成")
    CANCELLED = "cancelled", _("撤销")


class ReferralEvent(models.Model):
    """One step of a referral: who did what, when and why."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(_("操作"), max_length=10, choices=ReferralAction.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    by_name = models.CharField(_("操作人"), max_length=150, blank=True)
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("机构"),
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("时间"), auto_now_add=True)
    note = models.TextField(_("说明"), blank=True)

    class Meta:
        verbose_name = _("转诊记录")
        verbose_name_plural = _("转诊记录")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"
