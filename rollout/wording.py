"""How the health evaluation and the canary comparison write numbers in
their reasons. Pure module, standard library only."""

import math


def count(n: int) -> str:
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


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def limit_ms(value: float) -> str:
    return f"{value:g} ms"
