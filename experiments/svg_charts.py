"""The interval chart of a metric as inline SVG, drawn on the server: every
treatment arm gets its row (also before it has data), the axis always spans
zero, and the chart carries its own text alternative. Small and static, so
the page draws it with its HTML, with no script. Pure module (no Django)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from common import wording
from experiments.readout import tone

WIDTH, LABEL, RIGHT, ROW, TOP, BOTTOM = 600, 160, 24, 48, 30, 36
COLOURS = {"fixed": "#3856d6", "sequential": "#b54708"}
TONE_COLOURS = {"good": "#12805c", "bad": "#c0262d", "neutral": "#1d2330"}


def _domain(rows: list[Mapping[str, Any]]) -> tuple[float, float]:
    values = [0.0]
    for c in rows:
        for key in (
            "absolute_effect",
            "ci_low",
            "ci_high",
            "sequential_ci_low",
            "sequential_ci_high",
        ):
            if c.get(key) is not None:
                values.append(float(c[key]))
    low, high = min(values), max(values)
    if high - low == 0:
        low, high = -1.0, 1.0
    pad = (high - low) * 0.08
    return low - pad, high + pad


def summary(metric: Mapping[str, Any]) -> str:
    """The chart in words, for screen readers and as the SVG's title."""
    kind = str(metric.get("kind", "mean"))
    name = metric.get("name") or metric.get("metric")
    parts = []
    for c in metric.get("comparisons", []):
        label = f"{c.get('variant')} vs {c.get('control')}"
        if c.get("absolute_effect") is None:
            parts.append(f"{label}: no data yet")
            continue
        parts.append(
            f"{label}: effect {wording.effect(c['absolute_effect'], kind)}, fixed-horizon "
            f"interval {wording.interval(c.get('ci_low'), c.get('ci_high'), kind)}, "
            "sequential interval "
            f"{wording.interval(c.get('sequential_ci_low'), c.get('sequential_ci_high'), kind)}"
        )
    if not parts:
        parts.append("no treatment arm")
    return f"{name}, effect of each treatment against the control: " + "; ".join(parts) + "."


def forest_svg(metric: Mapping[str, Any], *, element_id: str) -> str:
    """Per treatment: the effect (a diamond coloured by its reading) with its
    fixed-horizon and sequential intervals, against a zero line."""
    rows = list(metric.get("comparisons", []))
    kind = str(metric.get("kind", "mean"))
    low, high = _domain(rows)
    plot = WIDTH - LABEL - RIGHT
    height = TOP + ROW * max(len(rows), 1) + BOTTOM

    def x(value: float) -> float:
        return round(LABEL + (value - low) / (high - low) * plot, 1)

    text = escape(summary(metric))
    parts = [
        f'<svg class="chart forest" id="{escape(element_id)}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-label="{text}"><title>{text}</title>',
        f'<text x="{LABEL}" y="14" class="legend"><tspan fill="{COLOURS["fixed"]}">━ fixed '
        f'horizon</tspan>  <tspan fill="{COLOURS["sequential"]}">━ sequential (always '
        "valid)</tspan>  ◆ effect</text>",
    ]
    zero = x(0.0)
    bottom = height - BOTTOM
    parts.append(
        f'<line x1="{zero}" y1="{TOP - 4}" x2="{zero}" y2="{bottom}" class="zero" '
        'stroke="#98a2b3" stroke-width="1.5" stroke-dasharray="4 3"/>'
    )
    for value, anchor in ((low, "start"), (0.0, "middle"), (high, "end")):
        shown = "0" if value == 0 else wording.effect(value, kind)
        parts.append(
            f'<text x="{x(value)}" y="{bottom + 18}" text-anchor="{anchor}" '
            f'class="tick">{escape(shown)}</text>'
        )
    for i, c in enumerate(rows):
        middle = TOP + ROW * i + ROW / 2
        label = escape(f"{c.get('variant')} vs {c.get('control')}")
        parts.append(
            f'<text x="{LABEL - 8}" y="{middle + 4}" text-anchor="end" class="label">{label}</text>'
        )
        if c.get("absolute_effect") is None:
            parts.append(f'<text x="{zero + 6}" y="{middle + 4}" class="nodata">no data yet</text>')
            continue
        for family, lo, hi, offset in (
            ("fixed", "ci_low", "ci_high", -6),
            ("sequential", "sequential_ci_low", "sequential_ci_high", 6),
        ):
            if c.get(lo) is None or c.get(hi) is None:
                continue
            parts.append(
                f'<line x1="{x(c[lo])}" y1="{middle + offset}" x2="{x(c[hi])}" '
                f'y2="{middle + offset}" stroke="{COLOURS[family]}" stroke-width="5" '
                f'stroke-linecap="round" class="{family}"/>'
            )
        cx = x(c["absolute_effect"])
        colour = TONE_COLOURS[tone(metric, c)]
        parts.append(
            f'<path d="M{cx} {middle - 8} L{cx + 7} {middle} L{cx} {middle + 8} '
            f'L{cx - 7} {middle} Z" fill="{colour}" class="effect {tone(metric, c)}"/>'
        )
    if not rows:
        parts.append(f'<text x="{LABEL}" y="{TOP + 20}" class="nodata">no treatment arm</text>')
    parts.append("</svg>")
    return "".join(parts)
