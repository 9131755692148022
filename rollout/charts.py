"""Plotly figures of a rollout's request metrics (plotly's figure format,
built in Python, drawn by the plotly.js shipped with the plotly package)."""

from typing import Any

VERSION_COLOURS = {"stable": "#475467", "canary": "#3856d6"}


def _threshold(name: str, value: float, colour: str, start: str, end: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": [start, end],
        "y": [value, value],
        "line": {"color": colour, "dash": "dash", "width": 1.5},
    }


def service_chart(
    series: dict[str, list[dict[str, Any]]],
    *,
    field: str,
    title: str,
    sla: float,
    rollback: float,
    scale: float = 1.0,
    unit: str = "",
) -> dict[str, Any]:
    """One measure of both versions over time, with the SLA and rollback lines."""
    points = [p for rows in series.values() for p in rows]
    start = min((p["minute"] for p in points), default="")
    end = max((p["minute"] for p in points), default="")
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": version,
            "x": [p["minute"] for p in rows],
            "y": [None if p[field] is None else p[field] * scale for p in rows],
            "line": {"color": VERSION_COLOURS[version]},
        }
        for version, rows in series.items()
    ]
    if points:
        data += [
            _threshold(f"SLA {sla * scale:g}{unit}", sla * scale, "#b54708", start, end),
            _threshold(
                f"rollback {rollback * scale:g}{unit}", rollback * scale, "#c0262d", start, end
            ),
        ]
    return {
        "data": data,
        "layout": {
            "title": {"text": title, "font": {"size": 14}},
            "height": 260,
            "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "legend": {"orientation": "h", "y": -0.3},
            "yaxis": {"rangemode": "tozero", "ticksuffix": unit},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
        },
    }


def summary(
    series: dict[str, list[dict[str, Any]]],
    *,
    field: str,
    label: str,
    bucket: int,
    scale: float = 1.0,
    unit: str = "",
) -> str:
    """A chart in words (its aria-label): per version, the buckets with
    traffic, the latest value and the highest."""
    parts = []
    for version, rows in series.items():
        values = [r[field] * scale for r in rows if r[field] is not None]
        if not values:
            parts.append(f"{version}: no requests")
            continue
        parts.append(
            f"{version}: {len(values)} buckets with requests, latest {values[-1]:.2f}{unit}, "
            f"highest {max(values):.2f}{unit}"
        )
    return f"{label} by version in {bucket}-minute buckets; " + "; ".join(parts) + "."
