"""The validation boundary on its own (pure: no database)."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from common import validation
from common.validation import Invalid

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "required"),
        ("   ", "required"),
        (3.5, "Must be a string"),
        ("a\x00b", "Null characters"),
        ("\ud800", "Surrogate"),
        ("x" * 11, "at most 10 characters"),
    ],
)
def test_text_is_refused_with_a_message(raw, message):
    with pytest.raises(Invalid, match=message):
        validation.check_text(raw, max_length=10)


def test_numbers_can_be_text_where_ids_allow_it():
    assert validation.check_text(42, max_length=10, numbers_as_text=True) == "42"
    with pytest.raises(Invalid):
        validation.check_text(True, max_length=10, numbers_as_text=True)


@pytest.mark.parametrize(
    "raw", [math.nan, math.inf, -math.inf, 1.7e308, 1e15 + 1e3, 10**400, "1", True, None]
)
def test_a_value_must_be_a_finite_number_within_1e15(raw):
    with pytest.raises(Invalid):
        validation.check_number(raw)


def test_the_bounds_of_a_value_are_included():
    assert validation.check_number(1e15) == 1e15
    assert validation.check_number(-(10**15)) == -1e15


@pytest.mark.parametrize("raw", [0, -1, 1e6 + 1, 1e308, math.nan, math.inf, "1", False])
def test_a_weight_must_be_in_0_to_1e6(raw):
    with pytest.raises(Invalid):
        validation.check_weight(raw)


def test_a_weight_of_1e6_is_allowed():
    assert validation.check_weight(1_000_000) == 1e6


@pytest.mark.parametrize(
    "raw",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-23:00",
        "1999-12-31T23:59:59Z",
        (NOW + timedelta(days=1, seconds=1)).isoformat(),
        -1e12,
        1e20,
        math.nan,
        "yesterday",
        "2026-11-26\x00",
        True,
        [2026],
    ],
)
def test_a_timestamp_must_lie_between_2000_and_tomorrow(raw):
    with pytest.raises(Invalid):
        validation.parse_timestamp(raw, now=NOW)


def test_a_timestamp_is_read_in_utc():
    parsed = validation.parse_timestamp("2026-11-26T14:00:00+02:00", now=NOW)
    assert parsed == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parsed.tzinfo is UTC
    assert validation.parse_timestamp("2000-01-01T00:00:00", now=NOW).year == 2000
    assert validation.parse_timestamp(1_780_000_000, now=NOW).year == 2026


def nested(depth):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_json_depth_counts_containers():
    assert validation.json_depth(1) == 0
    assert validation.json_depth({}) == 1
    assert validation.json_depth({"a": [{"b": 1}]}) == 3
    assert validation.json_depth(nested(500), stop_above=10) == 11


@pytest.mark.parametrize(
    "document",
    [
        nested(21),
        {"x": math.nan},
        {"x": math.inf},
        {"x": 1e16},
        {"x": 2**63},
        {"x": "a\x00b"},
        {"a\x00b": 1},
        {"x": "\udc00"},
    ],
)
def test_a_json_document_that_cannot_be_kept_is_refused(document):
    with pytest.raises(Invalid):
        validation.check_json(document)


def test_a_json_document_of_20_levels_is_kept():
    assert validation.check_json(nested(20)) == nested(20)


@pytest.mark.parametrize(
    "raw", [b'{"x": NaN}', b'{"x": Infinity}', b'{"x": 1e400}', b'{"x": 1' + b"0" * 400 + b"}"]
)
def test_the_strict_parser_refuses_numbers_that_are_not_finite(raw):
    with pytest.raises(Invalid, match="JSON parse error"):
        validation.parse_json(raw)


def test_the_lenient_parser_reads_them_as_floats_for_the_item_to_be_refused():
    parsed = validation.parse_json(
        b"[NaN, Infinity, 1e400, 1" + b"0" * 400 + b", 12]", allow_non_finite=True
    )
    assert math.isnan(parsed[0])
    assert parsed[1:4] == [math.inf] * 3
    assert parsed[4] == 12 and isinstance(parsed[4], int)


@pytest.mark.parametrize("depth", [65, 10_000, 1_000_000])
def test_a_body_nested_too_deeply_is_a_parse_error_not_a_recursion_error(depth):
    with pytest.raises(Invalid, match="nested more than 64 levels"):
        validation.parse_json(b"[" * depth + b"]" * depth)


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", b'{"a": 1', b""])
def test_a_malformed_body_is_a_parse_error(raw):
    with pytest.raises(Invalid, match="JSON parse error"):
        validation.parse_json(raw)
