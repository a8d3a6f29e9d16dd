from datetime import date

import pytest

from patients import rules


def test_valid_18_digit_number_derives_birth_date_and_gender():
    number = rules.make_resident_id("110105", date(1949, 12, 31), 21, male=True)
    rid = rules.parse_resident_id(number, today=date(2026, 1, 1))
    assert rid.birth_date == date(1949, 12, 31)
    assert rid.gender == "male"


def test_known_public_example_checksum():
    # GB 11643 worked example: 11010519491231002X
    rid = rules.parse_resident_id("11010519491231002x", today=date(2026, 1, 1))
    assert rid.number == "11010519491231002X"
    assert rid.gender == "female"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("110105194912310021", rules.ERR_CHECKSUM),
        ("1101051949123100", rules.ERR_LENGTH),
        ("11010519491331002X", rules.ERR_CHECKSUM),
        ("A1010519491231002X", rules.ERR_CHARS),
        ("", rules.ERR_LENGTH),
    ],
)
def test_invalid_numbers_are_refused_with_a_reason(raw, message):
    with pytest.raises(rules.IdNumberError) as exc:
        rules.parse_resident_id(raw, today=date(2026, 1, 1))
    assert exc.value.message == message


def test_impossible_birth_date_with_valid_checksum():
    body = "11010519490230002"  # 30 February
    number = body + rules.check_char(body)
    with pytest.raises(rules.IdNumberError) as exc:
        rules.parse_resident_id(number, today=date(2026, 1, 1))
    assert exc.value.message == rules.ERR_BIRTH


def test_birth_date_in_the_future():
    number = rules.make_resident_id("110105", date(2030, 1, 1), 11, male=True)
    with pytest.raises(rules.IdNumberError) as exc:
        rules.parse_resident_id(number, today=date(2026, 1, 1))
    assert exc.value.message == rules.ERR_FUTURE


def test_15_digit_legacy_number_is_converted():
    rid = rules.parse_resident_id("110105491231002", today=date(2026, 1, 1))
    assert rid.number == "11010519491231002X"
    assert rid.birth_date == date(1949, 12, 31)


def test_masking_keeps_first_6_and_last_4():
    assert rules.mask_id_number("11010519491231002X") == "110105********002X"
    assert rules.mask_phone("13812345678") == "138****5678"
