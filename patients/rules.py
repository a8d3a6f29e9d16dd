"""Pure rules of the patient register (DOMAIN.md → Patients). No ORM here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.translation import gettext_noop

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

# Plain strings, marked for makemessages: whoever shows one translates it
# (patients.services._id_error wraps it in gettext_lazy).
ERR_LENGTH = gettext_noop("身份证号应为18位（或15位旧号）。")
ERR_CHARS = gettext_noop("身份证号只能包含数字，最后一位可以是X。")
ERR_CHECKSUM = gettext_noop("身份证号校验位不正确，请核对。")
ERR_BIRTH = gettext_noop("身份证号中的出生日期无效。")
ERR_FUTURE = gettext_noop("身份证号中的出生日期晚于今天。")


class IdNumberError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ResidentId:
    number: str  # 18 characters, upper-case X
    birth_date: date
    gender: str  # "male" / "female"


def check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def convert_15_to_18(number: str) -> str:
    """A legacy 15-digit number: insert the century "19" and append the check char."""
    body = number[:6] + "19" + number[6:]
    return body + check_char(body)


def parse_resident_id(raw: str, *, today: date | None = None) -> ResidentId:
    """Validate a resident ID number (GB 11643) and derive birth date and gender.

    Raises IdNumberError with a message in Chinese. The address part is not
    checked against current division codes (DOMAIN.md).
    """
    number = (raw or "").strip().upper()
    if len(number) == 15:
        if not number.isdigit():
            raise IdNumberError(ERR_CHARS)
        number = convert_15_to_18(number)
    if len(number) != 18:
        raise IdNumberError(ERR_LENGTH)
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise IdNumberError(ERR_CHARS)
    if check_char(number[:17]) != number[17]:
        raise IdNumberError(ERR_CHECKSUM)
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise IdNumberError(ERR_BIRTH) from exc
    if birth.year < 1880:
        raise IdNumberError(ERR_BIRTH)
    if birth > (today or date.today()):
        raise IdNumberError(ERR_FUTURE)
    gender = "male" if int(number[16]) % 2 == 1 else "female"
    return ResidentId(number=number, birth_date=birth, gender=gender)


def normalize_id_number(id_type: str, raw: str) -> str:
    """The stored form of any document number (resident IDs: 18 chars, upper X)."""
    value = (raw or "").strip().upper().replace(" ", "")
    if id_type == "resident_id" and len(value) == 15 and value.isdigit():
        return convert_15_to_18(value)
    return value


def mask_id_number(number: str | None) -> str:
    """First 6 and last 4 characters shown (DOMAIN.md → Patients)."""
    if not number:
        return ""
    if len(number) <= 10:
        return number[:2] + "*" * max(len(number) - 4, 0) + number[-2:]
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def make_resident_id(prefix6: str, birth: date, seq3: int, male: bool) -> str:
    """Build a valid 18-character number (demo data, tests)."""
    seq = seq3 % 1000
    # the 17th digit (last of the sequence) is odd for male
    if (seq % 2 == 1) != male:
        seq = (seq + 1) % 1000
    body = f"{prefix6}{birth:%Y%m%d}{seq:03d}"
    return body + check_char(body)


def first_followup_due(registered_on: date, days: int) -> date:
    """The first follow-up of a newly registered patient is due ``days``
    after registration (DOMAIN.md → Next due date: the first time, 14 days;
    the setting ``FIRST_FOLLOWUP_DAYS``). Without it a patient never
    followed up would never be overdue."""
    return registered_on + timedelta(days=days)
