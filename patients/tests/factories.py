"""Builders for patients (through patient_register, as a doctor would)."""

from __future__ import annotations

import itertools
from datetime import date

from accounts.models import Region
from patients import rules
from patients.services import patient_register

_seq = itertools.count(1)


def resident_id(prefix: str = "990102", birth: date = date(1980, 5, 17), male=True) -> str:
    return rules.make_resident_id(prefix, birth, next(_seq) * 2 % 1000, male)


def patient(
    *,
    by,
    village: Region | str,
    name: str = "测试患者",
    male: bool = True,
    birth: date = date(1980, 5, 17),
    diagnosis: str = "schizophrenia",
    **extra,
):
    if isinstance(village, str):
        village = Region.objects.get(code=village)
    # a distinct number per call: vary the sequence and, when needed, the day
    number = extra.pop("id_number", None)
    if number is None:
        n = next(_seq)
        number = rules.make_resident_id("990102", birth, (n * 2) % 1000, male)
        if n >= 499:
            birth = date(birth.year, birth.month, 1 + n // 499 % 28)
            number = rules.make_resident_id("990102", birth, (n * 2) % 1000, male)
    data = {
        "name": name,
        "gender": "male" if male else "female",
        "birth_date": birth,
        "id_number": number,
        "region": village,
        "address": "测试地址1号",
        "diagnosis": diagnosis,
        "guardian": {"name": "监护人", "relation": "母亲", "phone": "13800000000"},
        **extra,
    }
    return patient_register(by=by, data=data)
