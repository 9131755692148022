"""How a stored snapshot reads on the dashboards: the one-line
recommendation, the results tables and the sample-ratio line. Pure module
(no Django): it maps what the analysis and the decision already said, and
decides nothing itself —

- the recommendation comes from the decision's verdict;
- a comparison's colour comes from `MetricComparison.improved` / `worsened`
  (the decision's own notion of "significantly better / worse", which
  follows the metric's `higher_is_better`);
- every number is written by common.wording.

The results tables are driven by COMPARISON_COLUMNS: a new quantity in the
snapshot's comparisons appears on the page by adding one Column here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common import wording
from experiments.decision import MetricComparison

DECISION_ROLES = ("primary", "guardrail")
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini–Hochberg"}


@dataclass(frozen=True)
class Recommendation:
    action: str  # ship | dont_ship | keep_running | fix_data | start | wait
    label: str
    tone: str  # good | bad | warn | neutral
    text: str


def units_needed(metrics: Sequence[Mapping[str, Any]]) -> tuple[int | None, float | None]:
    """The largest 'more units needed' over the primary metric's comparisons."""
    needed, days = None, None
    for m in metrics:
        if m.get("role") != "primary":
            continue
        for c in m.get("comparisons", []):
            if c.get("units_needed") and (needed is None or c["units_needed"] > needed):
                needed, days = c["units_needed"], c.get("days_needed")
    return needed, days


def more_units_text(needed: int | None, days: float | None) -> str:
    if not needed:
        return ""
    text = f"about {wording.count(needed)} more units"
    if days is not None:
        text += f" (≈ {days:.1f} days at the current rate)"
    return text


def recommendation(
    *, status: str, snapshot: Mapping[str, Any] | None, analysis_minutes: float
) -> Recommendation:
    """The one line at the top of an experiment: ship / don't ship / keep
    running / fix the data, from the latest snapshot's verdict."""
    every = wording.minutes(analysis_minutes)
    if status == "draft":
        return Recommendation(
            "start",
            "Not started",
            "neutral",
            f"A draft assigns nobody. Start it to assign units; results follow within {every}.",
        )
    if snapshot is None:
        return Recommendation(
            "wait",
            "No results yet",
            "neutral",
            f"The platform analyses running experiments every {every}; the first results "
            "appear after the next analysis.",
        )
    if not snapshot.get("units"):
        return Recommendation(
            "wait",
            "No data yet",
            "neutral",
            "No unit has been exposed yet. Results appear once exposures and events arrive; "
            f"the analysis runs every {every}.",
        )
    decision = snapshot.get("decision") or {}
    verdict = decision.get("verdict", "")
    variant = decision.get("variant")
    # With several treatments the reasons open with "best treatment: …"; the
    # line quotes the first reason about the numbers.
    reasons = [r for r in decision.get("reasons") or [] if not r.startswith("best treatment")]
    first_reason = reasons[0] if reasons else "a required condition fails"
    if verdict == "success":
        return Recommendation(
            "ship",
            "Ship",
            "good",
            f"Roll {variant or 'the treatment'} out to everyone: it meets the decision rules.",
        )
    if verdict == "failure":
        return Recommendation("dont_ship", "Don't ship", "bad", f"Roll back: {first_reason}.")
    if verdict == "conditional":
        return Recommendation(
            "dont_ship",
            "Don't ship yet",
            "warn",
            "The primary metric improved, but too few important improvements: optimise and re-run.",
        )
    if verdict == "invalid":
        return Recommendation(
            "fix_data",
            "Fix the data",
            "bad",
            "The split of units does not match the weights (sample ratio mismatch): fix the "
            "assignment or exposure logging, then restart.",
        )
    needed, days = units_needed(snapshot.get("metrics") or [])
    more = more_units_text(needed, days)
    if status == "stopped":
        return Recommendation(
            "dont_ship",
            "Don't ship",
            "neutral",
            "Stopped before the evidence was enough: no treatment is significantly better.",
        )
    return Recommendation(
        "keep_running",
        "Keep running",
        "warn",
        "No treatment is significantly better yet" + (f": {more} needed." if more else "."),
    )


def tone(metric: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    """good / bad / neutral, by the decision's notion of better and worse."""
    judged = MetricComparison(
        metric=metric.get("metric", ""),
        role=metric.get("role", ""),
        variant=comparison.get("variant", ""),
        absolute_effect=comparison.get("absolute_effect"),
        relative_effect=comparison.get("relative_effect"),
        significant=bool(comparison.get("significant")),
        higher_is_better=bool(metric.get("higher_is_better", True)),
    )
    if judged.improved:
        return "good"
    if judged.worsened:
        return "bad"
    return "neutral"


TONE_WORDS = {
    "good": "significantly better",
    "bad": "significantly worse",
    "neutral": "not significant",
}


@dataclass(frozen=True)
class Inference:
    """How the experiment's p-values are read: which family decides, and its correction."""

    sequential: bool
    correction: str
    alpha: float

    @property
    def family(self) -> str:
        return "sequential" if self.sequential else "fixed horizon"

    def decision_label(self, role: str) -> str:
        if role in DECISION_ROLES:
            name = CORRECTION_NAMES.get(self.correction, self.correction)
            return f"{self.family}, {name}-adjusted"
        return f"{self.family}, not adjusted ({role})"


CellFn = Callable[[Mapping[str, Any], Mapping[str, Any], Inference], str]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    group: str
    cell: CellFn
    numeric: bool = True
    # Shown only for metrics where some comparison has this snapshot field
    # (a guardrail's harm p, an important threshold's interval, the Bayesian engine).
    only_with: str = ""


def _kind(metric: Mapping[str, Any]) -> str:
    return str(metric.get("kind", "mean"))


COMPARISON_COLUMNS: tuple[Column, ...] = (
    Column(
        "comparison",
        "Comparison",
        "",
        lambda m, c, i: f"{c.get('variant')} vs {c.get('control')}",
        numeric=False,
    ),
    Column(
        "effect",
        "Effect",
        "",
        lambda m, c, i: wording.effect(c.get("absolute_effect"), _kind(m)),
    ),
    Column("relative", "Relative", "", lambda m, c, i: wording.relative(c.get("relative_effect"))),
    Column(
        "fixed_interval",
        "Interval",
        "Fixed horizon",
        lambda m, c, i: wording.interval(c.get("ci_low"), c.get("ci_high"), _kind(m)),
    ),
    Column("fixed_p", "p", "Fixed horizon", lambda m, c, i: wording.p_value(c.get("p_value"))),
    Column(
        "sequential_interval",
        "Interval",
        "Sequential (always valid)",
        lambda m, c, i: wording.interval(
            c.get("sequential_ci_low"), c.get("sequential_ci_high"), _kind(m)
        ),
    ),
    Column(
        "sequential_p",
        "p",
        "Sequential (always valid)",
        lambda m, c, i: wording.p_value(c.get("sequential_p_value")),
    ),
    Column(
        "decision_p",
        "p",
        "Decision",
        lambda m, c, i: wording.p_value(c.get("p_value_adjusted")),
    ),
    Column(
        "verdict",
        "Reading",
        "Decision",
        lambda m, c, i: (
            TONE_WORDS[tone(m, c)] if c.get("absolute_effect") is not None else "no data yet"
        ),
        numeric=False,
    ),
    Column(
        "power",
        "Power",
        "",
        lambda m, c, i: wording.MISSING if c.get("power") is None else f"{c['power'] * 100:.0f} %",
    ),
    Column(
        "harm_p",
        "Harm p",
        "Guardrail (one-sided)",
        lambda m, c, i: wording.p_value(c.get("harm_p_value")),
        only_with="harm_p_value",
    ),
    Column(
        "important_interval",
        "Interval",
        "Important threshold",
        lambda m, c, i: wording.interval(
            c.get("important_ci_low"), c.get("important_ci_high"), _kind(m)
        ),
        only_with="important_ci_low",
    ),
    Column(
        "chance_to_win",
        "Chance to win",
        "Bayesian",
        lambda m, c, i: wording.MISSING
        if c.get("chance_to_win") is None
        else f"{c['chance_to_win'] * 100:.1f} %",
        only_with="chance_to_win",
    ),
    Column(
        "risk",
        "Risk of shipping",
        "Bayesian",
        # Expected relative loss if the treatment is shipped and is worse (as gbstats).
        lambda m, c, i: wording.MISSING
        if c.get("risk_treatment") is None
        else f"{c['risk_treatment'] * 100:.2f} %",
        only_with="risk_treatment",
    ),
)


def header_groups(
    columns: Sequence[Column], inference: Inference, role: str
) -> list[dict[str, Any]]:
    """The first header row: consecutive columns of one group share a cell."""
    groups: list[dict[str, Any]] = []
    for column in columns:
        if groups and groups[-1]["group"] == column.group:
            groups[-1]["span"] += 1
            continue
        label = column.group
        if column.group == "Decision":
            label = f"Decision: {inference.decision_label(role)}, α = {inference.alpha:g}"
        groups.append({"group": column.group, "label": label, "span": 1})
    return groups


def metric_table(metric: Mapping[str, Any], inference: Inference) -> dict[str, Any]:
    """The comparisons of one metric as header rows and cells."""
    comparisons = metric.get("comparisons", [])
    columns = tuple(
        col
        for col in COMPARISON_COLUMNS
        if not col.only_with or any(c.get(col.only_with) is not None for c in comparisons)
    )
    rows = []
    for c in metric.get("comparisons", []):
        row_tone = tone(metric, c)
        rows.append(
            {
                "variant": c.get("variant"),
                "tone": row_tone,
                "cells": [
                    {
                        "key": col.key,
                        "text": col.cell(metric, c, inference),
                        "numeric": col.numeric,
                        "interval": col.key.endswith("interval"),
                        "tone": row_tone if col.key in ("effect", "relative", "verdict") else "",
                    }
                    for col in columns
                ],
            }
        )
    return {
        "groups": header_groups(columns, inference, str(metric.get("role", ""))),
        "columns": [
            {"key": col.key, "label": col.label, "numeric": col.numeric} for col in columns
        ],
        "rows": rows,
    }


def variant_rows(metric: Mapping[str, Any]) -> list[dict[str, str]]:
    kind = _kind(metric)
    return [
        {
            "variant": str(v.get("variant")),
            "units": wording.count(v.get("units")),
            "mean": wording.metric_value(v.get("mean"), kind),
            "std": wording.plain(v.get("std")) if kind != "binomial" else "",
        }
        for v in metric.get("variants", [])
    ]


def srm_line(srm: Mapping[str, Any]) -> str:
    """The sample-ratio check in one line, passing or not:
    "split 50.1 / 49.9 (control / treatment; expected 50.0 / 50.0), p = 0.62"."""
    observed = srm.get("observed") or {}
    if not sum(observed.values()):
        return "no units yet"
    expected = srm.get("expected") or {}
    text = f"split {wording.split(observed)} ({' / '.join(observed)}"
    if expected:
        text += f"; expected {wording.split(expected)}"
    return text + f"), p = {wording.p_value(srm.get('p_value'))}"


def primary_lift(snapshot: Mapping[str, Any] | None, *, sequential: bool) -> dict[str, str] | None:
    """The primary metric's relative lift of the decided (or first) treatment
    with its interval in the family that decides, for the overview."""
    if not snapshot or not snapshot.get("units"):
        return None
    chosen = (snapshot.get("decision") or {}).get("variant")
    for m in snapshot.get("metrics") or []:
        if m.get("role") != "primary" or not m.get("comparisons"):
            continue
        comparisons = m["comparisons"]
        c = next((c for c in comparisons if c.get("variant") == chosen), comparisons[0])
        prefix = "relative_sequential_ci" if sequential else "relative_ci"
        return {
            "metric": str(m.get("name") or m.get("metric")),
            "variant": str(c.get("variant")),
            "lift": wording.relative(c.get("relative_effect")),
            "interval": wording.relative_interval(c.get(f"{prefix}_low"), c.get(f"{prefix}_high")),
            "tone": tone(m, c),
        }
    return None
