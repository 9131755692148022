"""Template filters that write numbers the way the rest of the platform does
(common.wording): the pages and the reports say the same thing."""

import json

from django import template

from common import wording

register = template.Library()


@register.filter
def percent(value, digits: int = 2) -> str:
    """0.0123 → "1.23 %"; None → "–"."""
    if value is None or value == "":
        return wording.MISSING
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return wording.MISSING


@register.filter
def ms(value) -> str:
    """12.34 → "12.3 ms"; None (no request measured) → "–"."""
    return wording.ms(None if value in (None, "") else float(value))


@register.filter
def count(value) -> str:
    """12345 → "12 345"; None → "–"."""
    return wording.count(None if value in (None, "") else int(value))


@register.filter
def pvalue(value) -> str:
    """0.00001 → "< 0.0001"; 0.6234 → "0.623"."""
    return wording.p_value(None if value in (None, "") else float(value))


@register.filter
def metric_value(value, kind: str) -> str:
    """A variant's mean: "73.9 %" for a binomial metric, "612.3" for a mean."""
    return wording.metric_value(None if value in (None, "") else float(value), kind)


@register.filter
def effect(value, kind: str) -> str:
    """A difference: "+3.2 pp" for a binomial metric, "+12.5" for a mean."""
    return wording.effect(None if value in (None, "") else float(value), kind)


@register.filter
def relative(value) -> str:
    """A relative change: "+12.3 %"."""
    return wording.relative(None if value in (None, "") else float(value))


@register.filter
def as_json(value) -> str:
    """A stored JSON value as JSON text ({"engine": "v2"}), not Python's repr."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
