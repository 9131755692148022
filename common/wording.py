"""How the platform writes numbers, in one place: the health and canary
reasons, the dashboards (through the `platform` template tags) and the
decision report. Pure module, standard library only.

Every function takes None (a number not computed, e.g. no data yet) and
answers "–" for it, never "None", "()" or "[, ]". Binomial metrics are shown
as percentages and their differences in percentage points; mean metrics in
their own units. Signs use the minus sign (−) so that columns line up.
"""

import math
from collections.abc import Mapping

MISSING = "–"
MINUS = "−"
P_FLOOR = 0.0001


def _missing(value: float | None) -> bool:
    """A number not computed (None) or not finite."""
    return value is None or not math.isfinite(value)


def count(n: int | None) -> str:
    """12345 → "12 345"."""
    if n is None:
        return MISSING
    return f"{n:,}".replace(",", " ")


def percents(value: float, limit: float) -> tuple[str, str]:
    """Format two rates as percentages with enough decimals to show they differ."""
    for decimals in range(2, 7):
        shown_value = f"{value * 100:.{decimals}f} %"
        shown_limit = f"{limit * 100:.{decimals}f} %"
        if shown_value != shown_limit or math.isclose(value, limit, rel_tol=1e-9):
            break
    return shown_value, shown_limit


def percent(value: float) -> str:
    return percents(value, value)[0]


def ms(value: float | None) -> str:
    return MISSING if _missing(value) else f"{value:.1f} ms"


def limit_ms(value: float) -> str:
    return f"{value:g} ms"


def _signed(text: str) -> str:
    """A leading "-" as the minus sign, and "+" on positive numbers."""
    if text.startswith("-"):
        return MINUS + text[1:]
    return text if set(text) <= set("0.") else "+" + text


def _decimals(value: float, base: int) -> int:
    """`base` decimals, more for small numbers so they do not read as 0."""
    magnitude = abs(value)
    if magnitude == 0 or magnitude >= 1:
        return base
    return max(base, min(6, base - 1 - math.floor(math.log10(magnitude))))


def plain(value: float | None, *, signed: bool = False) -> str:
    """A mean or an effect in the metric's own units: four significant digits,
    whole numbers from 1 000 on (12 345 rather than 1.235e+04)."""
    if value is None or not math.isfinite(value):
        return MISSING
    if abs(value) >= 1000:
        text = f"{value:,.0f}".replace(",", " ")
    else:
        text = f"{value:.4g}"
        if "e" in text:
            text = f"{value:.{_decimals(value, 2)}f}"
    return _signed(text) if signed else text.replace("-", MINUS, 1)


def share(value: float | None, digits: int = 1) -> str:
    """A rate as a percentage: 0.7389 → "73.9 %"."""
    if value is None or not math.isfinite(value):
        return MISSING
    text = f"{value * 100:.{_decimals(value * 100, digits)}f} %"
    return text.replace("-", MINUS, 1)


def points(value: float | None, digits: int = 1) -> str:
    """A difference of two rates in percentage points: 0.0321 → "+3.2 pp"."""
    if value is None or not math.isfinite(value):
        return MISSING
    return _signed(f"{value * 100:.{_decimals(value * 100, digits)}f}") + " pp"


def relative(value: float | None, digits: int = 1) -> str:
    """A relative change: 0.123 → "+12.3 %"."""
    if value is None or not math.isfinite(value):
        return MISSING
    return _signed(f"{value * 100:.{_decimals(value * 100, digits)}f}") + " %"


def metric_value(value: float | None, kind: str) -> str:
    """A variant's mean: a conversion rate for binomial metrics, else plain."""
    return share(value) if kind == "binomial" else plain(value)


def effect(value: float | None, kind: str) -> str:
    """A treatment − control difference: percentage points for binomial metrics."""
    return points(value) if kind == "binomial" else plain(value, signed=True)


def interval(low: float | None, high: float | None, kind: str) -> str:
    """An interval of an effect: "−1.2 pp to +3.4 pp"; "–" when not computed."""
    if _missing(low) or _missing(high):
        return MISSING
    return f"{effect(low, kind)} to {effect(high, kind)}"


def relative_interval(low: float | None, high: float | None) -> str:
    if _missing(low) or _missing(high):
        return MISSING
    return f"{relative(low)} to {relative(high)}"


def p_value(value: float | None) -> str:
    """p as read: "< 0.0001" below that, else three significant digits (0.62, 0.0123)."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value < P_FLOOR:
        return "< 0.0001"
    return f"{min(value, 1.0):.3g}"


def split(observed: Mapping[str, int]) -> str:
    """The observed split of units across arms: "50.1 / 49.9"."""
    total = sum(observed.values())
    if not total:
        return MISSING
    return " / ".join(f"{100 * n / total:.1f}" for n in observed.values())


def minutes(value: float) -> str:
    """A duration in minutes, as people say it: "5 minutes", "1 minute", "2 hours"."""
    if value >= 120 and value % 60 == 0:
        hours = int(value // 60)
        return f"{hours} hours"
    shown = f"{value:g}"
    return f"{shown} minute" + ("" if shown == "1" else "s")
