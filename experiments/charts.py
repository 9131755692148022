"""Plotly figures of experiment results over time, built in Python as
plotly's own figure format (data + layout), drawn in the page by the
plotly.js that ships with the plotly package. The interval chart of the
latest results is inline SVG (experiments.svg_charts)."""

from typing import Any

from common import wording

COLOURS = {"fixed": "#3856d6", "sequential": "#b54708", "effect": "#1d2330"}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 140, "r": 20, "t": 40, "b": 40},
        "height": 240,
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        **extra,
    }


def over_time(metric: str, series: list[dict[str, Any]], *, kind: str = "mean") -> dict[str, Any]:
    """Cumulative effect with its sequential interval, and the p-value, over
    time; binomial effects in percentage points. The effect axis always spans zero."""
    scale, suffix = (100.0, " pp") if kind == "binomial" else (1.0, "")

    def scaled(value: float | None) -> float | None:
        return None if value is None else value * scale

    by_variant: dict[str, list[dict[str, Any]]] = {}
    for row in series:
        by_variant.setdefault(row["variant"], []).append(row)
    data: list[dict[str, Any]] = []
    for variant, rows in by_variant.items():
        times = [r["computed_at"].isoformat() for r in rows]
        data += [
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{variant}: sequential interval",
                "x": times + times[::-1],
                "y": [scaled(r["sequential_ci_high"]) for r in rows]
                + [scaled(r["sequential_ci_low"]) for r in rows][::-1],
                "fill": "toself",
                "fillcolor": "rgba(181,71,8,0.12)",
                "line": {"color": "rgba(0,0,0,0)"},
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{variant}: effect",
                "x": times,
                "y": [scaled(r["absolute_effect"]) for r in rows],
                "line": {"color": COLOURS["effect"]},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{variant}: p (sequential)",
                "x": times,
                "y": [r["sequential_p_value"] for r in rows],
                "yaxis": "y2",
                "line": {"color": COLOURS["fixed"], "dash": "dot"},
            },
        ]
    return {
        "data": data,
        "layout": _layout(
            f"{metric}: cumulative effect and p-value over time",
            height=280,
            margin={"l": 60, "r": 60, "t": 40, "b": 40},
            yaxis={
                "title": {"text": "effect" + suffix},
                "zeroline": True,
                "rangemode": "tozero",
                "ticksuffix": suffix,
            },
            yaxis2={"title": {"text": "p"}, "overlaying": "y", "side": "right", "range": [0, 1]},
        ),
    }


def over_time_summary(metric: str, series: list[dict[str, Any]], *, kind: str = "mean") -> str:
    """The history chart in words: its span and, per treatment, the latest values."""
    if not series:
        return f"{metric}: no analysis over time yet."
    times = [row["computed_at"] for row in series]
    parts = []
    latest: dict[str, dict[str, Any]] = {}
    for row in series:
        latest[row["variant"]] = row
    for variant, row in latest.items():
        parts.append(
            f"{variant} latest effect {wording.effect(row['absolute_effect'], kind)} "
            "(sequential interval "
            f"{wording.interval(row['sequential_ci_low'], row['sequential_ci_high'], kind)}, "
            f"sequential p {wording.p_value(row['sequential_p_value'])})"
        )
    return (
        f"{metric}: cumulative effect over {len(set(times))} analysis points from "
        f"{min(times):%Y-%m-%d %H:%M} to {max(times):%Y-%m-%d %H:%M} UTC; " + "; ".join(parts) + "."
    )
