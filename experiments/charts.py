"""Plotly figures of experiment results, built in Python as plotly's own
figure format (data + layout), drawn in the page by the plotly.js that ships
with the plotly package."""

from typing import Any

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


def forest_plot(metric: dict[str, Any]) -> dict[str, Any]:
    """Per treatment: the effect with its fixed-horizon and sequential intervals."""
    rows = [c for c in metric["comparisons"] if c.get("absolute_effect") is not None]
    labels = [f"{c['variant']} vs {c['control']}" for c in rows]
    data = []
    for kind, low, high, colour, offset in (
        ("fixed horizon", "ci_low", "ci_high", COLOURS["fixed"], 0.12),
        (
            "sequential (always valid)",
            "sequential_ci_low",
            "sequential_ci_high",
            COLOURS["sequential"],
            -0.12,
        ),
    ):
        xs, ys, texts = [], [], []
        for i, c in enumerate(rows):
            if c.get(low) is None or c.get(high) is None:
                continue
            xs += [c[low], c[high], None]
            ys += [i + offset, i + offset, None]
            texts.append(f"{c[low]:.4g} … {c[high]:.4g}")
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": kind,
                "x": xs,
                "y": ys,
                "line": {"color": colour, "width": 4},
                "hoverinfo": "x+name",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "effect",
            "x": [c["absolute_effect"] for c in rows],
            "y": list(range(len(rows))),
            "marker": {"color": COLOURS["effect"], "size": 10, "symbol": "diamond"},
        }
    )
    return {
        "data": data,
        "layout": _layout(
            f"{metric['metric']}: effect (treatment − control)",
            yaxis={
                "tickvals": list(range(len(rows))),
                "ticktext": labels,
                "range": [-0.6, max(len(rows) - 0.4, 0.6)],
            },
            xaxis={"zeroline": True, "zerolinecolor": "#98a2b3", "zerolinewidth": 2},
        ),
    }


def over_time(metric: str, series: list[dict[str, Any]]) -> dict[str, Any]:
    """Cumulative effect with its sequential interval, and the p-value, over time."""
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
                "y": [r["sequential_ci_high"] for r in rows]
                + [r["sequential_ci_low"] for r in rows][::-1],
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
                "y": [r["absolute_effect"] for r in rows],
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
            yaxis={"title": {"text": "effect"}, "zeroline": True},
            yaxis2={"title": {"text": "p"}, "overlaying": "y", "side": "right", "range": [0, 1]},
        ),
    }
