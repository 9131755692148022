"""The one way numbers are written on pages and in reports."""

import pytest

from common import wording


@pytest.mark.parametrize(
    ("p", "shown"),
    [
        (0.00001, "< 0.0001"),
        (0.0, "< 0.0001"),
        (0.0001, "0.0001"),
        (0.0123, "0.0123"),
        (0.6234, "0.623"),
        (1.0, "1"),
        (None, "–"),
        (float("nan"), "–"),
    ],
)
def test_p_values_never_read_as_zero(p, shown):
    assert wording.p_value(p) == shown


def test_binomial_metrics_are_percentages_and_their_differences_points():
    assert wording.metric_value(0.7389, "binomial") == "73.9 %"
    assert wording.effect(0.0321, "binomial") == "+3.2 pp"
    assert wording.effect(-0.356, "binomial") == "−35.6 pp"
    assert wording.interval(-0.01, 0.034, "binomial") == "−1.0 pp to +3.4 pp"
    # A small difference keeps the digits that make it differ from zero.
    assert wording.effect(0.00012, "binomial") == "+0.01 pp"
    assert wording.effect(0.0000012, "binomial") == "+0.0001 pp"


def test_mean_metrics_keep_their_units():
    assert wording.metric_value(612.34, "mean") == "612.3"
    assert wording.effect(-12.345, "mean") == "−12.35"
    assert wording.plain(123456.7) == "123 457"
    assert wording.relative(0.123) == "+12.3 %"


def test_missing_numbers_are_a_dash_never_brackets_or_none():
    for text in (
        wording.interval(None, None, "mean"),
        wording.effect(None, "binomial"),
        wording.metric_value(None, "mean"),
        wording.ms(None),
        wording.count(None),
        wording.relative_interval(None, 0.1),
    ):
        assert text == "–"


def test_split_and_durations():
    assert wording.split({"control": 501, "treatment": 499}) == "50.1 / 49.9"
    assert wording.split({"control": 0}) == "–"
    assert wording.minutes(5) == "5 minutes"
    assert wording.minutes(1) == "1 minute"
    assert wording.minutes(120) == "2 hours"
