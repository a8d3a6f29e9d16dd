"""The patient register (DOMAIN.md → Patients) and the personal information
supplement form (DOMAIN-SOURCES.md §1.8)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Organisation, Region
from core.fields import EncryptedCharField
from patients import rules


class Gender(models.TextChoices):
    MALE = "male", _("男")
    FEMALE = "female", _("女")


class IdType(models.TextChoices):
    RESIDENT_ID = "resident_id", _("居民身份证")
    HMT_PERMIT = "hmt_permit", _("港澳台居民居住证/通行证")
    PASSPORT = "passport", _("护照")
    OTHER = "other", _("其他")


class Diagnosis(models.TextChoices):
    SCHIZOPHRENIA = "schizophrenia", _("精神分裂症")
    SCHIZOAFFECTIVE = "schizoaffective", _("分裂情感性障碍")
    DELUSIONAL = "delusional", _("持久的妄想性障碍")
    BIPOLAR = "bipolar", _("双相障碍")
    EPILEPSY = "epilepsy", _("癫痫所致精神障碍")
    INTELLECTUAL_DISABILITY = "intellectual_disability", _("精神发育迟滞伴发精神障碍")
    OTHER = "other", _("其他（有肇事肇祸行为或危险）")


class Status(models.TextChoices):
    ACTIVE = "active", _("在管")
    LOST = "lost", _("失访")
    REFUSED = "refused", _("不同意参加管理")
    MOVED_OUT = "moved_out", _("迁出")
    DECEASED = "deceased", _("死亡")
    REMOVED = "removed", _("注销")


REGISTERED_STATUSES = (Status.ACTIVE, Status.LOST, Status.REFUSED)


class Classification(models.TextChoices):
    UNSTABLE = "unstable", _("不稳定")
    BASICALLY_STABLE = "basically_stable", _("基本稳定")
    STABLE = "stable", _("稳定")


class Poverty(models.TextChoices):
    NONE = "none", _("无")
    DIBAO = "dibao", _("低保")
    TEKUN = "tekun", _("特困")
    LOW_INCOME = "low_income", _("低收入")


class Certificate(models.TextChoices):
    NONE = "none", _("未办理")
    APPLIED = "applied", _("已申请")
    HELD = "held", _("已持证")


class Insurance(models.TextChoices):
    NONE = "none", _("未参保")
    EMPLOYEE = "employee", _("城镇职工基本医疗保险")
    RESIDENT = "resident", _("城乡居民基本医疗保险")
    OTHER = "other", _("其他")


class HouseholdType(models.TextChoices):
    URBAN = "urban", _("城镇")
    RURAL = "rural", _("农村")


class Employment(models.TextChoices):
    WORKER = "worker", _("在岗工人")
    MANAGER = "manager", _("在岗管理者")
    FARMER = "farmer", _("农民")
    UNEMPLOYED = "unemployed", _("下岗或无业")
    STUDENT = "student", _("在校学生")
    RETIRED = "retired", _("退休")
    PROFESSIONAL = "professional", _("专业技术人员")
    OTHER = "other", _("其他")
    UNKNOWN = "unknown", _("不详")


class DatePrecision(models.TextChoices):
    DAY = "day", _("日")
    MONTH = "month", _("月")
    YEAR = "year", _("年")


class LockStatus(models.TextChoices):
    NONE = "none", _("无关锁")
    LOCKED = "locked", _("关锁")
    RELEASED = "released", _("关锁已解除")


class PastOutpatient(models.TextChoices):
    NEVER = "never", _("未治")
    INTERMITTENT = "intermittent", _("间断门诊治疗")
    CONTINUOUS = "continuous", _("连续门诊治疗")


class TreatmentEffect(models.TextChoices):
    CURED = "cured", _("临床痊愈")
    IMPROVED = "improved", _("好转")
    UNCHANGED = "unchanged", _("无变化")
    WORSE = "worse", _("加重")


class EconomicStatus(models.TextChoices):
    POOR = "poor", _("贫困（在当地贫困线标准以下）")
    NOT_POOR = "not_poor", _("非贫困")
    UNKNOWN = "unknown", _("不详")


class Symptom(models.TextChoices):
    HALLUCINATION = "hallucination", _("幻觉")
    COMMUNICATION_DIFFICULTY = "communication_difficulty", _("交流困难")
    SUSPICION = "suspicion", _("猜疑")
    MOODINESS = "moodiness", _("喜怒无常")
    ODD_BEHAVIOUR = "odd_behaviour", _("行为怪异")
    EXCITEMENT = "excitement", _("兴奋话多")
    VIOLENCE = "violence", _("伤人毁物")
    PESSIMISM = "pessimism", _("悲观厌世")
    WANDERING = "wandering", _("无故外走")
    SELF_TALK = "self_talk", _("自语自笑")
    WITHDRAWAL = "withdrawal", _("孤僻懒散")
    OTHER = "other", _("其他")


# Keys of the dangerous-behaviour counts (national form, follow-up item 17).
DANGEROUS_BEHAVIOURS = {
    "minor_trouble": _("轻度滋事"),
    "trouble": _("肇事"),
    "disaster": _("肇祸"),
    "other_harm": _("其他危害行为"),
    "self_harm": _("自伤"),
    "suicide_attempt": _("自杀未遂"),
}


class Patient(models.Model):
    """A person on the register, managed where they live (``region``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # identity
    name = models.CharField(_("姓名"), max_length=50, db_index=True)
    gender = models.CharField(_("性别"), max_length=6, choices=Gender.choices)
    birth_date = models.DateField(_("出生日期"))
    id_type = models.CharField(
        _("证件类型"), max_length=12, choices=IdType.choices, default=IdType.RESIDENT_ID
    )
    id_number = EncryptedCharField(_("证件号码"), max_plain_length=32)
    # keyed blind index of (id_type, normalised number): exact search + uniqueness
    id_number_index = models.CharField(max_length=64, unique=True, editable=False)
    ethnicity = models.CharField(_("民族"), max_length=20, blank=True)
    phone = EncryptedCharField(_("联系电话"), max_plain_length=32, blank=True)
    # where the patient lives (managed here) and the household registration;
    # no index of its own: patient_region_cover leads with it (a second,
    # narrower index on region_id would win the planner's estimates and
    # lose the index-only scans of county-wide counts)
    region = models.ForeignKey(
        Region,
        verbose_name=_("现住址区划"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    address = models.CharField(_("现住址"), max_length=200)
    household_region = models.ForeignKey(
        Region,
        verbose_name=_("户籍地区划"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    household_address = models.CharField(_("户籍地址"), max_length=200, blank=True)
    managing_organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("管理机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="managed_patients",
    )
    # diagnosis (supplement form item 15)
    diagnosis = models.CharField(_("目前诊断"), max_length=32, choices=Diagnosis.choices)
    diagnosis_hospital = models.CharField(_("确诊医院"), max_length=100, blank=True)
    diagnosis_date = models.DateField(_("确诊日期"), null=True, blank=True)
    # management status
    status = models.CharField(
        _("管理状态"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    status_changed_at = models.DateTimeField(_("状态变更时间"), default=timezone.now)
    registered_on = models.DateField(_("纳入管理日期"), default=timezone.localdate)
    # latest follow-up, kept by followups services in the same transaction
    risk_level = models.PositiveSmallIntegerField(
        _("最近危险性评估"), null=True, blank=True, validators=[MaxValueValidator(5)]
    )
    classification = models.CharField(
        _("最近随访分类"), max_length=20, choices=Classification.choices, blank=True
    )
    last_followup_date = models.DateField(_("最近随访日期"), null=True, blank=True)
    next_followup_due = models.DateField(_("下次随访日期"), null=True, blank=True)
    # flags of other departments
    police_registered = models.BooleanField(_("公安已列管"), default=False)
    poverty = models.CharField(
        _("困难类别"), max_length=12, choices=Poverty.choices, default=Poverty.NONE
    )
    certificate = models.CharField(
        _("残疾人证"), max_length=8, choices=Certificate.choices, default=Certificate.NONE
    )
    certificate_grade = models.PositiveSmallIntegerField(
        _("精神残疾等级"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(4)],
    )
    certificate_number = models.CharField(_("残疾人证号"), max_length=32, blank=True)
    union_member = models.BooleanField(_("工会会员"), default=False)
    insurance = models.CharField(
        _("基本医疗保险"), max_length=10, choices=Insurance.choices, default=Insurance.RESIDENT
    )
    in_community_rehab = models.BooleanField(_("参加社区康复"), default=False)
    in_hospital = models.BooleanField(_("正在住院"), default=False)
    # personal information supplement form (§1.8)
    village_contact_name = models.CharField(_("村（居）委会联系人"), max_length=50, blank=True)
    village_contact_phone = models.CharField(_("村（居）委会联系电话"), max_length=32, blank=True)
    household_type = models.CharField(
        _("户别"), max_length=6, choices=HouseholdType.choices, blank=True
    )
    employment = models.CharField(
        _("就业情况"), max_length=14, choices=Employment.choices, blank=True
    )
    consent = models.BooleanField(_("同意参加管理"), null=True, blank=True)
    consent_signer = models.CharField(_("知情同意签字人"), max_length=50, blank=True)
    consent_date = models.DateField(_("签字时间"), null=True, blank=True)
    first_onset_date = models.DateField(_("初次发病时间"), null=True, blank=True)
    first_onset_precision = models.CharField(
        _("初次发病时间精确度"),
        max_length=6,
        choices=DatePrecision.choices,
        default=DatePrecision.DAY,
    )
    past_symptoms = models.JSONField(_("既往主要症状"), default=list, blank=True)
    past_symptoms_other = models.CharField(_("其他既往症状"), max_length=100, blank=True)
    past_lock_status = models.CharField(
        _("既往关锁情况"), max_length=10, choices=LockStatus.choices, blank=True
    )
    past_outpatient = models.CharField(
        _("既往门诊治疗"), max_length=14, choices=PastOutpatient.choices, blank=True
    )
    first_antipsychotic_date = models.DateField(_("首次抗精神病药治疗时间"), null=True, blank=True)
    first_antipsychotic_precision = models.CharField(
        _("首次抗精神病药治疗时间精确度"),
        max_length=6,
        choices=DatePrecision.choices,
        default=DatePrecision.DAY,
    )
    past_admissions = models.PositiveSmallIntegerField(_("既往住院次数"), default=0)
    recent_treatment_effect = models.CharField(
        _("最近一次治疗效果"), max_length=10, choices=TreatmentEffect.choices, blank=True
    )
    dangerous_history = models.JSONField(_("既往危险行为（次数）"), default=dict, blank=True)
    economic_status = models.CharField(
        _("经济状况"), max_length=10, choices=EconomicStatus.choices, blank=True
    )
    specialist_opinion = models.TextField(_("专科医生意见"), blank=True)
    supplement_filled_on = models.DateField(_("填表日期"), null=True, blank=True)
    supplement_doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("填表医生"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # bookkeeping
    version = models.PositiveIntegerField(_("版本"), default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("患者")
        verbose_name_plural = _("患者")
        ordering = ["region_id", "name"]
        indexes = [
            models.Index(fields=["region", "status"], name="patient_region_status"),
            models.Index(fields=["status", "next_followup_due"], name="patient_status_due"),
            models.Index(fields=["risk_level"], name="patient_risk"),
            # County-wide lists and searches (docs/benchmarks.md, F1): the
            # page order, and every column the scoped counts and the search
            # filter read, so both are index-only scans on PostgreSQL.
            models.Index(
                fields=["region", "name", "id"],
                include=(
                    "id_number_index",
                    "status",
                    "next_followup_due",
                    "risk_level",
                    "poverty",
                    "certificate",
                ),
                name="patient_region_cover",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(risk_level__isnull=True) | models.Q(risk_level__lte=5),
                name="patient_risk_level_0_5",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def id_number_masked(self) -> str:
        return rules.mask_id_number(self.id_number)

    @property
    def phone_masked(self) -> str:
        return rules.mask_phone(self.phone)

    @property
    def is_registered(self) -> bool:
        return self.status in REGISTERED_STATUSES

    @property
    def overdue(self) -> bool:
        return (
            self.status == Status.ACTIVE
            and self.next_followup_due is not None
            and self.next_followup_due < timezone.localdate()
        )

    @property
    def age(self) -> int:
        today = timezone.localdate()
        b = self.birth_date
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def id_number_index_for(id_type: str, number: str) -> str:
    from core.crypto import blind_index

    return blind_index(rules.normalize_id_number(id_type, number), purpose=f"id:{id_type}")


class Guardian(models.Model):
    """The guardian (监护人) of a patient; supplement form items 1–4."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="guardian")
    name = models.CharField(_("监护人姓名"), max_length=50)
    relation = models.CharField(_("与患者关系"), max_length=20)
    phone = EncryptedCharField(_("监护人电话"), max_plain_length=32, blank=True)
    address = models.CharField(_("监护人住址"), max_length=200, blank=True)
    responsibility_letter = models.BooleanField(_("已签监护责任书"), default=False)
    responsibility_letter_date = models.DateField(_("责任书签订日期"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("监护人")
        verbose_name_plural = _("监护人")

    def __str__(self) -> str:
        return self.name


class AssistantGuardian(models.Model):
    """An assistant guardian (协助监护人)."""

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="assistant_guardians"
    )
    name = models.CharField(_("姓名"), max_length=50)
    relation = models.CharField(_("身份/关系"), max_length=30, blank=True)
    phone = EncryptedCharField(_("电话"), max_plain_length=32, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("协助监护人")
        verbose_name_plural = _("协助监护人")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class CareRole(models.TextChoices):
    DOCTOR = "doctor", _("精防医生")
    VILLAGE_DOCTOR = "village_doctor", _("村医")
    POLICE = "police", _("民警")
    GRID_WORKER = "grid_worker", _("网格员")
    CIVIL_AFFAIRS = "civil_affairs", _("民政专干")
    DPF_LIAISON = "dpf_liaison", _("残联专干")
    VILLAGE_CADRE = "village_cadre", _("村（居）干部")
    GOVERNANCE = "governance", _("综治专干")
    ASSISTANT_GUARDIAN = "assistant_guardian", _("协助监护人")
    OTHER = "other", _("其他")


class CareTeamMember(models.Model):
    """One member of the patient's care team (关爱帮扶小组, "九管一")."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="care_team")
    role = models.CharField(_("职责"), max_length=20, choices=CareRole.choices)
    name = models.CharField(_("姓名"), max_length=50)
    phone = EncryptedCharField(_("电话"), max_plain_length=32, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("系统账号"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="care_teams",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("关爱帮扶小组成员")
        verbose_name_plural = _("关爱帮扶小组成员")
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "patient"], name="careteam_user_patient")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.name}"


class IncidentKind(models.TextChoices):
    MINOR_TROUBLE = "minor_trouble", _("轻度滋事")
    TROUBLE = "trouble", _("肇事")
    DISASTER = "disaster", _("肇祸")


class Incident(models.Model):
    """An incident (肇事肇祸) recorded by police; raises an ``incident`` alert."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="incidents")
    kind = models.CharField(_("类别"), max_length=16, choices=IncidentKind.choices)
    occurred_on = models.DateField(_("发生日期"))
    place = models.CharField(_("地点"), max_length=200)
    description = models.TextField(_("经过"))
    handling = models.TextField(_("处置情况"), blank=True)
    guardian_failed_duties = models.BooleanField(_("监护人未履行监护责任"), default=False)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("记录机构"), on_delete=models.PROTECT, related_name="+"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("肇事肇祸")
        verbose_name_plural = _("肇事肇祸")
        ordering = ["-occurred_on"]
        indexes = [models.Index(fields=["patient", "occurred_on"], name="incident_patient_date")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.occurred_on}"
