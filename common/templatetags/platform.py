from django import template

register = template.Library()


@register.filter
def percent(value, digits: int = 2) -> str:
    """0.0123 → "1.23 %"; None → "–"."""
    if value is None or value == "":
        return "–"
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return "–"
