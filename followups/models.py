"""Follow-up records (the national form, DOMAIN.md → Follow-ups) and alerts
(DOMAIN.md → Alerts) with their per-organisation handling and deliveries."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Organisation
from patients.models import Classification, Incident, Patient


class Mode(models.TextChoices):
    CLINIC = "clinic", _("门诊")
    HOME = "home", _("家庭访视")
    PHONE = "phone", _("电话")


class Outcome(models.TextChoices):
    COMPLETED = "completed", _("已随访")
    NOT_REACHED = "not_reached", _("未访到")
    LOST = "lost", _("失访")
    DECEASED = "deceased", _("死亡")


class Contact(models.TextChoices):
    PATIENT = "patient", _("患者本人")
    FAMILY = "family", _("家属/监护人")
    OTHER = "other", _("其他知情人")


class LostReason(models.TextChoices):
    OUT_FOR_WORK = "out_for_work", _("外出务工")
    MOVED = "moved", _("迁居他处")
    MISSING = "missing", _("走失")
    UNREACHABLE_3X = "unreachable_3x", _("连续3次未访到")
    OTHER = "other", _("其他")


class DeathCause(models.TextChoices):
    PHYSICAL_ILLNESS = "physical_illness", _("躯体疾病")
    SUICIDE = "suicide", _("自杀")
    HOMICIDE = "homicide", _("他杀")
    ACCIDENT = "accident", _("意外")
    COMPLICATION = "complication", _("精神疾病相关并发症")
    OTHER = "other", _("其他")


class Insight(models.TextChoices):
    COMPLETE = "complete", _("自知力完全")
    PARTIAL = "partial", _("自知力不全")
    ABSENT = "absent", _("自知力缺失")


class Level3(models.TextChoices):
    GOOD = "good", _("良好")
    FAIR = "fair", _("一般")
    POOR = "poor", _("较差")


class WorkLevel(models.TextChoices):
    GOOD = "good", _("良好")
    FAIR = "fair", _("一般")
    POOR = "poor", _("较差")
    NOT_APPLICABLE = "not_applicable", _("此项不适用")


class LockStatus(models.TextChoices):
    NONE = "none", _("无关锁")
    LOCKED = "locked", _("关锁")
    RELEASED = "released", _("关锁已解除")


class Hospitalization(models.TextChoices):
    NONE = "none", _("未住院")
    CURRENT = "current", _("目前正在住院")
    PAST = "past", _("曾住院，现未住院")


class Compliance(models.TextChoices):
    REGULAR = "regular", _("按医嘱规律用药")
    INTERMITTENT = "intermittent", _("间断用药")
    NONE = "none", _("不用药")
    NOT_NEEDED = "not_needed", _("医嘱勿需用药")


class TreatmentEffect(models.TextChoices):
    CURED = "cured", _("痊愈")
    IMPROVED = "improved", _("好转")
    UNCHANGED = "unchanged", _("无变化")
    WORSE = "worse", _("加重")
    NOT_APPLICABLE = "not_applicable", _("不适用")


class RehabMeasure(models.TextChoices):
    DAILY_LIVING = "daily_living", _("生活劳动能力")
    VOCATIONAL = "vocational", _("职业训练")
    LEARNING = "learning", _("学习能力")
    SOCIAL = "social", _("社会交往")
    OTHER = "other", _("其他")


class FollowUp(models.Model):
    """One contact recorded on the national follow-up form (DOMAIN-SOURCES §1.7).

    ``medications`` / ``medication_guidance`` hold up to 3 rows each:
    ``{"drug", "morning_mg", "noon_mg", "evening_mg"}`` or
    ``{"drug", "injection_interval_weeks", "injection_mg"}``.
    ``dangerous_behaviours`` holds counts keyed by
    ``patients.models.DANGEROUS_BEHAVIOURS``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # indexed by followup_patient_date (patient, -visit_date), which serves
    # every lookup by patient: a separate FK index would only slow writes
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="followups", db_index=False
    )
    visit_date = models.DateField(_("随访日期"))
    mode = models.CharField(_("随访形式"), max_length=8, choices=Mode.choices)
    outcome = models.CharField(
        _("随访结果"), max_length=12, choices=Outcome.choices, default=Outcome.COMPLETED
    )
    contacts = models.JSONField(_("随访对象"), default=list, blank=True)
    lost_reason = models.CharField(
        _("失访原因"), max_length=16, choices=LostReason.choices, blank=True
    )
    death_date = models.DateField(_("死亡日期"), null=True, blank=True)
    death_cause = models.CharField(
        _("死亡原因"), max_length=16, choices=DeathCause.choices, blank=True
    )
    death_cause_detail = models.CharField(_("死亡原因详情"), max_length=100, blank=True)
    risk_level = models.PositiveSmallIntegerField(
        _("危险性评估"), null=True, blank=True, validators=[MaxValueValidator(5)]
    )
    symptoms = models.JSONField(_("目前症状"), default=list, blank=True)
    symptoms_other = models.CharField(_("其他症状"), max_length=100, blank=True)
    insight = models.CharField(_("自知力"), max_length=10, choices=Insight.choices, blank=True)
    sleep = models.CharField(_("睡眠情况"), max_length=6, choices=Level3.choices, blank=True)
    diet = models.CharField(_("饮食情况"), max_length=6, choices=Level3.choices, blank=True)
    self_care = models.CharField(
        _("个人生活料理"), max_length=6, choices=Level3.choices, blank=True
    )
    housework = models.CharField(_("家务劳动"), max_length=6, choices=Level3.choices, blank=True)
    work = models.CharField(
        _("生产劳动及工作"), max_length=16, choices=WorkLevel.choices, blank=True
    )
    learning = models.CharField(_("学习能力"), max_length=6, choices=Level3.choices, blank=True)
    social = models.CharField(_("社会人际交往"), max_length=6, choices=Level3.choices, blank=True)
    dangerous_behaviours = models.JSONField(_("危险行为"), default=dict, blank=True)
    lock_status = models.CharField(
        _("两次随访期间关锁情况"), max_length=10, choices=LockStatus.choices, blank=True
    )
    hospitalization = models.CharField(
        _("两次随访期间住院情况"), max_length=8, choices=Hospitalization.choices, blank=True
    )
    last_discharge_date = models.DateField(_("末次出院时间"), null=True, blank=True)
    lab_tests = models.TextField(_("实验室检查"), blank=True)
    medication_compliance = models.CharField(
        _("用药依从性"), max_length=14, choices=Compliance.choices, blank=True
    )
    adverse_reaction = models.BooleanField(_("药物不良反应"), default=False)
    adverse_reaction_serious = models.BooleanField(_("严重不良反应"), default=False)
    adverse_reaction_detail = models.CharField(_("不良反应详情"), max_length=200, blank=True)
    treatment_effect = models.CharField(
        _("治疗效果"), max_length=16, choices=TreatmentEffect.choices, blank=True
    )
    referral_suggested = models.BooleanField(_("建议转诊"), default=False)
    referral_reason = models.CharField(_("转诊原因"), max_length=200, blank=True)
    referred_to = models.CharField(_("转诊至机构及科室"), max_length=100, blank=True)
    medications = models.JSONField(_("用药情况"), default=list, blank=True)
    medication_guidance = models.JSONField(_("用药指导"), default=list, blank=True)
    rehab_measures = models.JSONField(_("康复措施"), default=list, blank=True)
    rehab_measures_other = models.CharField(_("其他康复措施"), max_length=100, blank=True)
    # the system's suggestion and the doctor's decision (override kept with reason)
    suggested_classification = models.CharField(
        _("系统建议分类"), max_length=20, choices=Classification.choices, blank=True
    )
    classification = models.CharField(
        _("本次随访分类"), max_length=20, choices=Classification.choices, blank=True
    )
    classification_override_reason = models.CharField(_("调整分类原因"), max_length=200, blank=True)
    suggested_next_due_date = models.DateField(_("建议下次随访日期"), null=True, blank=True)
    next_due_date = models.DateField(_("下次随访日期"), null=True, blank=True)
    # who and where
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("随访机构"),
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("随访医生"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # never searched by; accounts are deactivated, not deleted
    )
    # client-generated key: a retried POST does not create a second row (R7);
    # unique where set (partial index: rows without a key cost nothing)
    idempotency_key = models.UUIDField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("随访记录")
        verbose_name_plural = _("随访记录")
        ordering = ["-visit_date", "-created_at"]
        indexes = [
            models.Index(fields=["patient", "-visit_date"], name="followup_patient_date"),
            models.Index(fields=["visit_date"], name="followup_visit_date"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(risk_level__isnull=True) | models.Q(risk_level__lte=5),
                name="followup_risk_level_0_5",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="followup_idempotency_key_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.visit_date} {self.get_outcome_display()}"


class AlertKind(models.TextChoices):
    RISK = "risk", _("高风险")
    INCIDENT = "incident", _("肇事肇祸")
    OVERDUE = "overdue", _("逾期未随访")
    LOST = "lost", _("失访")
    REFERRAL = "referral", _("转诊超时")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("待处理")
    ACKNOWLEDGED = "acknowledged", _("已签收")
    RESOLVED = "resolved", _("已办结")


class Alert(models.Model):
    """An alert about one patient, raised once per (patient, kind, episode).

    ``episode`` names the condition instance (the follow-up for a risk alert,
    the due date for an overdue one, the referral and deadline for a referral
    alert), so however many scans run, one condition gives one alert.
    Handling is per recipient organisation (AlertRecipient)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # (patient, kind, episode) is unique: that index serves lookups by patient
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="alerts", db_index=False
    )
    kind = models.CharField(_("类型"), max_length=10, choices=AlertKind.choices)
    episode = models.CharField(max_length=80)
    risk_level = models.PositiveSmallIntegerField(_("危险性等级"), null=True, blank=True)
    followup = models.ForeignKey(
        FollowUp, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    # referrals live in another app; keep the id without a cross-app FK
    referral_id = models.UUIDField(null=True, blank=True)
    raised_at = models.DateTimeField(_("发出时间"), auto_now_add=True, db_index=True)
    due_by = models.DateTimeField(_("应处理时限"), null=True, blank=True)
    status = models.CharField(
        _("状态"), max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("预警")
        verbose_name_plural = _("预警")
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind", "episode"], name="alert_once_per_episode"
            )
        ]
        indexes = [models.Index(fields=["kind", "status"], name="alert_kind_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.raised_at:%Y-%m-%d}"


class AlertRecipient(models.Model):
    """One organisation's copy of an alert, with its own lifecycle
    open → acknowledged → resolved (who, when, note)."""

    # (alert, organisation) is unique and (organisation, status) indexed:
    # those two indexes serve every lookup, plain FK indexes would not
    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, related_name="recipients", db_index=False
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="alert_inbox", db_index=False
    )
    escalated = models.BooleanField(_("升级"), default=False)
    status = models.CharField(
        _("状态"), max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    resolved_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    note = models.TextField(_("处理情况"), blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("预警接收")
        verbose_name_plural = _("预警接收")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "organisation"], name="alert_recipient_once")
        ]
        indexes = [
            models.Index(fields=["organisation", "status"], name="alertrcpt_org_status"),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} → {self.organisation_id}"


class NotificationDelivery(models.Model):
    """One notification of one alert recipient on one channel: the unique
    constraint makes a re-delivered task a no-op (exactly once per effect)."""

    recipient = models.ForeignKey(
        AlertRecipient, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=16)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "channel"], name="notification_once_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id} {self.channel}"
