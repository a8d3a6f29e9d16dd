"""Data exchange with other departments and reconciliation of their lists
(DOMAIN.md → Data exchange and reconciliation)."""

from __future__ import annotations

import base64
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Organisation, Region
from core.fields import EncryptedCharField
from core.models import TaskRun
from patients.models import Patient


class PartnerDepartment(models.TextChoices):
    POLICE = "police", _("公安")
    GOVERNANCE = "governance", _("综治")
    CIVIL_AFFAIRS = "civil_affairs", _("民政")
    DISABLED_FEDERATION = "disabled_federation", _("残联")


class ExchangeSchedule(models.TextChoices):
    QUARTERLY = "quarterly", _("每季度")
    HALF_YEARLY = "half_yearly", _("每半年")


class PackageFormat(models.TextChoices):
    CSV = "csv", _("CSV（UTF-8 带BOM）")
    XLSX = "xlsx", _("Excel（XLSX）")
    JSON = "json", _("JSON")


class DeliveryMethod(models.TextChoices):
    FOLDER = "folder", _("投递目录")
    HTTPS = "https", _("HTTPS推送")


class EncryptedBlobMixin:
    """Uploaded and generated files hold personal data: kept encrypted at rest
    (core.crypto) as base64 text in ``content``, and purged when no longer needed."""

    def set_content(self, data: bytes) -> None:
        self.content = base64.b64encode(data).decode("ascii")

    def get_content(self) -> bytes:
        return base64.b64decode(self.content or "")


class ExchangePartner(models.Model):
    """A department of one county that receives a package on a schedule.

    The delivery state (lease, back-off) lives here because it belongs to the
    endpoint: every run for the same partner waits for the same back-off, so a
    failing endpoint is never hit by a storm of retries."""

    region = models.ForeignKey(
        Region, verbose_name=_("县（区）"), on_delete=models.PROTECT, related_name="+"
    )
    department = models.CharField(_("交换部门"), max_length=24, choices=PartnerDepartment.choices)
    name = models.CharField(_("名称"), max_length=100)
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("接收单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    schedule = models.CharField(_("交换周期"), max_length=12, choices=ExchangeSchedule.choices)
    immediate_high_risk = models.BooleanField(_("危险性3级及以上即时推送"), default=False)
    format = models.CharField(_("文件格式"), max_length=4, choices=PackageFormat.choices)
    delivery = models.CharField(_("投递方式"), max_length=8, choices=DeliveryMethod.choices)
    folder_path = models.CharField(_("投递目录"), max_length=255, blank=True)
    endpoint_url = models.URLField(_("接收地址（HTTPS）"), max_length=255, blank=True)
    ca_certificate = models.TextField(
        _("对方CA证书（PEM，可选）"),
        blank=True,
        help_text=_("对方使用内部证书机构签发的证书时填写。"),
    )
    signing_key = EncryptedCharField(_("签名密钥"), max_plain_length=128)
    key_id = models.CharField(_("密钥编号"), max_length=32, default="k1")
    is_active = models.BooleanField(_("启用"), default=True)
    # delivery state of the endpoint
    lease_until = models.DateTimeField(null=True, blank=True)
    backoff_until = models.DateTimeField(_("暂停投递至"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("连续失败次数"), default=0)
    high_risk_cursor = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(
        excluded_fields=[
            "signing_key",
            "lease_until",
            "backoff_until",
            "consecutive_failures",
            "high_risk_cursor",
        ]
    )

    class Meta:
        verbose_name = _("信息交换对象")
        verbose_name_plural = _("信息交换对象")
        ordering = ["region_id", "department", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["region", "department", "name"], name="exchange_partner_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RunKind(models.TextChoices):
    SCHEDULED = "scheduled", _("定期交换")
    HIGH_RISK = "high_risk", _("高风险即时推送")


class RunStatus(models.TextChoices):
    PENDING = "pending", _("待投递")
    DELIVERED = "delivered", _("已投递")
    FAILED = "failed", _("投递失败")


class ExchangeRun(EncryptedBlobMixin, models.Model):
    """One package for one partner and period; unique per (partner, kind,
    period) so a second beat run for the same period builds nothing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(ExchangePartner, on_delete=models.PROTECT, related_name="runs")
    kind = models.CharField(_("类型"), max_length=10, choices=RunKind.choices)
    period = models.CharField(_("期间"), max_length=32)
    status = models.CharField(
        _("状态"), max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING
    )
    rows = models.PositiveIntegerField(_("记录数"), default=0)
    counts = models.JSONField(_("分类计数"), default=dict, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    manifest = models.JSONField(_("清单"), default=dict)
    file_name = models.CharField(_("文件名"), max_length=120)
    content = EncryptedCharField(max_plain_length=50_000_000, blank=True)
    attempts = models.PositiveIntegerField(_("投递次数"), default=0)
    last_error = models.CharField(_("最近错误"), max_length=300, blank=True)
    delivered_at = models.DateTimeField(_("投递时间"), null=True, blank=True)
    task_run = models.ForeignKey(
        TaskRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("生成时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("交换记录")
        verbose_name_plural = _("交换记录")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "kind", "period"], name="exchange_run_once_per_period"
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="exchange_run_status")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.period}"


class HighRiskSent(models.Model):
    """One risk alert pushed at once to one partner (exchange_high_risk).

    What is still to send is decided by these markers, not by a time cursor:
    an alert committed late with an earlier ``raised_at`` than one already
    sent is still found and sent, once."""

    # (partner, alert) is unique: that index serves lookups by partner
    partner = models.ForeignKey(
        ExchangePartner, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    alert = models.ForeignKey(
        "followups.Alert", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    run = models.ForeignKey(ExchangeRun, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("高风险即时推送记录")
        verbose_name_plural = _("高风险即时推送记录")
        constraints = [
            models.UniqueConstraint(fields=["partner", "alert"], name="high_risk_sent_once")
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.alert_id}"


class ReconciliationStatus(models.TextChoices):
    SUCCEEDED = "succeeded", _("已完成")
    FAILED = "failed", _("失败")


class ReconciliationRun(models.Model):
    """One comparison of a partner's list with the register of one region.

    The same file (sha256) for the same region and partner is one run:
    uploading it again returns this run and changes nothing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.ForeignKey(
        Region, verbose_name=_("比对范围"), on_delete=models.PROTECT, related_name="+"
    )
    partner = models.CharField(_("比对部门"), max_length=24, choices=PartnerDepartment.choices)
    file_name = models.CharField(_("文件名"), max_length=200)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        _("状态"),
        max_length=10,
        choices=ReconciliationStatus.choices,
        default=ReconciliationStatus.SUCCEEDED,
    )
    counts = models.JSONField(_("计数"), default=dict)
    errors = models.JSONField(_("错误"), default=list, blank=True)
    task_run = models.ForeignKey(
        TaskRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("上传单位"),
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("比对时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("比对记录")
        verbose_name_plural = _("比对记录")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["region", "partner", "sha256"],
                condition=models.Q(status="succeeded"),
                name="reconciliation_once_per_file",
            )
        ]

    def __str__(self) -> str:
        return f"{self.partner} {self.created_at:%Y-%m-%d}"


class ItemOutcome(models.TextChoices):
    MATCHED = "matched", _("已匹配")
    REVIEW = "review", _("待人工核对")
    MISSING_FROM_REGISTER = "missing_from_register", _("本系统未登记")
    HIGH_RISK_MISSING = "high_risk_missing", _("高风险患者未在对方名单")
    INVALID = "invalid", _("无法识别")
    DUPLICATE = "duplicate", _("名单内重复")


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("待核对")
    SAME_PERSON = "same_person", _("确认为同一人")
    DIFFERENT_PERSON = "different_person", _("不是同一人（转为线索）")


class ReconciliationItem(models.Model):
    """One result line: a partner row (matched, for review, missing, invalid)
    or a register patient missing from the partner's list."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="items")
    row_number = models.PositiveIntegerField(_("行号"), null=True, blank=True)
    outcome = models.CharField(_("结果"), max_length=24, choices=ItemOutcome.choices)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(_("姓名"), max_length=50, blank=True)
    id_number = EncryptedCharField(_("证件号码"), max_plain_length=32, blank=True)
    disagreements = models.JSONField(_("状态不一致"), default=list, blank=True)
    # what the partner's row said beyond name and ID (region code, gender,
    # birth date, address): enough to raise a clue after a manual review
    row_data = models.JSONField(default=dict, blank=True)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    clue = models.ForeignKey(
        "referrals.Clue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_status = models.CharField(
        _("核对"), max_length=20, choices=ReviewStatus.choices, blank=True
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("比对结果")
        verbose_name_plural = _("比对结果")
        ordering = ["run", "outcome", "row_number", "id"]
        indexes = [models.Index(fields=["run", "outcome"], name="recon_item_run_outcome")]

    def __str__(self) -> str:
        return f"{self.run_id} {self.outcome} {self.row_number}"

    @property
    def id_number_masked(self) -> str:
        from patients.rules import mask_id_number

        return mask_id_number(self.id_number)


class TaskKind(models.TextChoices):
    POVERTY = "poverty", _("困难类别不一致")
    CERTIFICATE = "certificate", _("残疾人证不一致")
    REHAB = "rehab", _("社区康复不一致")
    POLICE_REGISTERED = "police_registered", _("公安列管不一致")
    STATUS = "status", _("管理状态不一致")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("待处理")
    RESOLVED = "resolved", _("已处理")
    DISMISSED = "dismissed", _("无需处理")


def disagreement_value_label(kind: str, value: str) -> str:
    """How a disagreement's value reads (codes such as ``dibao``, ``held/2``,
    ``yes`` are stored; people read 低保, 已持证（2级）, 是)."""
    from patients.models import Certificate, Poverty, Status

    if kind in ("rehab", "police_registered"):
        return str({"yes": _("是"), "no": _("否")}.get(value, value))
    if kind == "poverty":
        return str(dict(Poverty.choices).get(value, value))
    if kind == "status":
        return str(dict(Status.choices).get(value, value))
    if kind == "certificate":
        code, _sep, grade = value.partition("/")
        label = str(dict(Certificate.choices).get(code, code))
        return (
            str(_("%(label)s（%(grade)s级）") % {"label": label, "grade": grade})
            if grade
            else label
        )
    return value


class EntitlementTask(models.Model):
    """A status disagreement found by reconciliation, for the department
    that owns the status (poverty → civil affairs, certificate → federation…)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("类型"), max_length=20, choices=TaskKind.choices)
    department = models.CharField(_("负责部门"), max_length=24)
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("负责单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    partner_value = models.CharField(_("对方记录"), max_length=64)
    register_value = models.CharField(_("本系统记录"), max_length=64)
    status = models.CharField(
        _("状态"), max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN
    )
    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.PROTECT, related_name="tasks", null=True
    )
    note = models.CharField(_("处理说明"), max_length=200, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("权益核查任务")
        verbose_name_plural = _("权益核查任务")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind"],
                condition=models.Q(status="open"),
                name="entitlement_task_one_open",
            )
        ]
        indexes = [models.Index(fields=["department", "status"], name="entitlement_dept_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.patient_id}"

    @property
    def partner_value_label(self) -> str:
        return disagreement_value_label(self.kind, self.partner_value)

    @property
    def register_value_label(self) -> str:
        return disagreement_value_label(self.kind, self.register_value)


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    VALIDATING = "validating", _("正在校验")
    WRITING = "writing", _("正在写入")
    SUCCEEDED = "succeeded", _("导入成功")
    FAILED = "failed", _("未导入（有错误）")


class RosterImport(EncryptedBlobMixin, models.Model):
    """One upload of a county's Excel roster. All rows or none are written;
    rows already on the register are counted, not written again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("导入单位"), on_delete=models.PROTECT, related_name="+"
    )
    file_name = models.CharField(_("文件名"), max_length=200)
    sha256 = models.CharField(max_length=64)
    content = EncryptedCharField(max_plain_length=50_000_000, blank=True)
    status = models.CharField(
        _("状态"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    total_rows = models.PositiveIntegerField(_("数据行数"), default=0)
    created_count = models.PositiveIntegerField(_("新登记"), default=0)
    existing_count = models.PositiveIntegerField(_("已在册"), default=0)
    errors = models.JSONField(_("错误"), default=list, blank=True)
    task_run = models.ForeignKey(
        TaskRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("上传时间"), auto_now_add=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("花名册导入")
        verbose_name_plural = _("花名册导入")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_running(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.VALIDATING, ImportStatus.WRITING)
