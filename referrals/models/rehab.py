"""Community rehabilitation (DOMAIN.md → Referrals; DOMAIN-SOURCES.md §7.2):
institutions with places, enrolments, service sessions and attendance."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Organisation
from patients.models import Patient


class RehabService(models.TextChoices):
    MEDICATION_TRAINING = "medication_training", _("服药训练")
    DAILY_LIVING_TRAINING = "daily_living_training", _("生活技能训练")
    SOCIAL_SKILLS_TRAINING = "social_skills_training", _("社交技能训练")
    VOCATIONAL_TRAINING = "vocational_training", _("职业能力训练")
    HOME_GUIDANCE = "home_guidance", _("居家康复指导")
    SUPPORTED_EMPLOYMENT = "supported_employment", _("辅助性就业")


class RehabInstitution(models.Model):
    """A community rehabilitation institution: an organisation of kind
    ``rehab_institution`` (its department runs it, its region is where it
    serves) with a number of places."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, related_name="rehab_institution"
    )
    places = models.PositiveIntegerField(_("康复名额"))
    services = models.JSONField(_("服务项目"), default=list, blank=True)
    address = models.CharField(_("地址"), max_length=200, blank=True)
    contact_name = models.CharField(_("联系人"), max_length=50, blank=True)
    contact_phone = models.CharField(_("联系电话"), max_length=32, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("社区康复机构")
        verbose_name_plural = _("社区康复机构")
        ordering = ["organisation__region_id", "organisation__name"]

    def __str__(self) -> str:
        return self.organisation.name

    def service_labels(self) -> list[str]:
        labels = dict(RehabService.choices)
        return [str(labels.get(s, s)) for s in self.services]


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", _("康复中")
    ENDED = "ended", _("已结束")


class EnrolmentEndReason(models.TextChoices):
    COMPLETED = "completed", _("康复结束")
    RELAPSE = "relapse", _("病情复发（绿色通道转诊）")
    WITHDRAWN = "withdrawn", _("本人或监护人退出")
    MOVED = "moved", _("迁出")
    DECEASED = "deceased", _("死亡")
    OTHER = "other", _("其他")


class RehabEnrolment(models.Model):
    """A patient's place at an institution. The patient's ``in_community_rehab``
    flag follows whether an active enrolment exists."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="rehab_enrolments")
    institution = models.ForeignKey(
        RehabInstitution, on_delete=models.PROTECT, related_name="enrolments"
    )
    status = models.CharField(
        _("状态"), max_length=8, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE
    )
    started_on = models.DateField(_("入组日期"))
    ended_on = models.DateField(_("结束日期"), null=True, blank=True)
    end_reason = models.CharField(
        _("结束原因"), max_length=10, choices=EnrolmentEndReason.choices, blank=True
    )
    end_note = models.CharField(_("结束说明"), max_length=200, blank=True)
    patient_consent = models.BooleanField(_("患者同意"), default=False)
    guardian_consent = models.BooleanField(_("监护人同意"), default=False)
    consent_date = models.DateField(_("同意日期"), null=True, blank=True)
    referral = models.ForeignKey(
        "referrals.Referral",
        verbose_name=_("来源转介"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="enrolments",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("社区康复入组")
        verbose_name_plural = _("社区康复入组")
        ordering = ["-started_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(status="active"),
                name="rehab_one_active_enrolment",
            )
        ]
        indexes = [
            models.Index(fields=["institution", "status"], name="rehab_enrolment_inst_status")
        ]

    def __str__(self) -> str:
        return f"{self.institution_id} {self.started_on}"


class RehabSession(models.Model):
    """One service session held by an institution (a kind of DOMAIN.md)."""

    institution = models.ForeignKey(
        RehabInstitution, on_delete=models.PROTECT, related_name="sessions"
    )
    kind = models.CharField(_("服务项目"), max_length=24, choices=RehabService.choices)
    held_on = models.DateField(_("日期"))
    topic = models.CharField(_("内容"), max_length=200)
    facilitator = models.CharField(_("带领人"), max_length=50, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("康复服务活动")
        verbose_name_plural = _("康复服务活动")
        ordering = ["-held_on", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.held_on}"


class RehabAttendance(models.Model):
    session = models.ForeignKey(RehabSession, on_delete=models.CASCADE, related_name="attendance")
    enrolment = models.ForeignKey(
        RehabEnrolment, on_delete=models.PROTECT, related_name="attendance"
    )
    attended = models.BooleanField(_("出勤"), default=True)

    class Meta:
        verbose_name = _("出勤")
        verbose_name_plural = _("出勤")
        constraints = [
            models.UniqueConstraint(fields=["session", "enrolment"], name="rehab_attendance_once")
        ]

    def __str__(self) -> str:
        return f"{self.session_id}/{self.enrolment_id}"
