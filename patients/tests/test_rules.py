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


def test_29_february_of_a_leap_year_is_a_valid_birth_date():
    number = rules.make_resident_id("110105", date(2000, 2, 29), 12, male=False)
    assert number[6:14] == "20000229"
    rid = rules.parse_resident_id(number, today=date(2026, 1, 1))
    assert rid.birth_date == date(2000, 2, 29)
    assert rid.gender == "female"


def test_29_february_1900_is_refused_1900_was_not_a_leap_year():
    body = "11010519000229001"
    number = body + rules.check_char(body)  # the checksum is right, the date is not
    with pytest.raises(rules.IdNumberError) as exc:
        rules.parse_resident_id(number, today=date(2026, 1, 1))
    assert exc.value.message == rules.ERR_BIRTH


def test_a_legacy_15_digit_number_of_29_february_1900_is_refused():
    # 15-digit numbers carry a two-digit year of the 1900s: "000229" is 1900-02-29
    with pytest.raises(rules.IdNumberError) as exc:
        rules.parse_resident_id("110105000229001", today=date(2026, 1, 1))
    assert exc.value.message == rules.ERR_BIRTH


def test_a_legacy_15_digit_number_with_a_letter_is_refused():
    with pytest.raises(rules.IdNumberError) as exc:
        rules.parse_resident_id("11010549123100X", today=date(2026, 1, 1))
    assert exc.value.message == rules.ERR_CHARS


@pytest.mark.parametrize(
    ("seq", "gender"), [(1, "male"), (2, "female"), (9, "male"), (0, "female")]
)
def test_gender_follows_the_parity_of_the_17th_digit(seq, gender):
    body = f"11010519800101{seq:03d}"
    rid = rules.parse_resident_id(body + rules.check_char(body), today=date(2026, 1, 1))
    assert rid.gender == gender


def test_every_message_is_marked_for_translation():
    """The ERR_* texts are plain strings (rules stay free of Django's
    translation machinery at import) marked with gettext_noop; the services
    translate them when raising (patients.services._id_error)."""
    import ast
    from pathlib import Path

    source = Path(rules.__file__).read_text(encoding="utf-8")
    marked = {
        node.targets[0].id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.startswith("ERR_")
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", "") in {"gettext_noop", "_noop"}
    }
    assert marked == {name for name in vars(rules) if name.startswith("ERR_")}
