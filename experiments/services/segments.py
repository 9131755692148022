"""Results broken down by an exposure attribute: the 20 largest levels plus
"other", with the multiple-testing correction applied across segments.

Each cell is computed the way the experiment decides: CUPED when the
experiment has a lookback, and `significant` on the always-valid sequential
p-value when the experiment is sequential (watching a live breakdown with
fixed-horizon p-values would flag about a third of A/A cells over 50 looks).
Exposures and events are bounded by the experiment's stop."""

from typing import Any

from experiments import aggregation, stats
from experiments.models import Experiment, Metric
from experiments.services.analysis import CARRYOVER_STAGE, _finite, _same_shifts, _variant_stats

MAX_ATTRIBUTE_LENGTH = 64


def _merge(into: aggregation.ArmSums | None, extra: aggregation.ArmSums) -> aggregation.ArmSums:
    """Sums of two groups of units (same query, so the same shifts)."""
    if into is None:
        return extra

    def add(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a + b

    return aggregation.ArmSums(
        n=into.n + extra.n,
        total=into.total + extra.total,
        squares=into.squares + extra.squares,
        x_total=add(into.x_total, extra.x_total),
        x_squares=add(into.x_squares, extra.x_squares),
        xy=add(into.xy, extra.xy),
        shift=extra.shift,
        x_shift=extra.x_shift,
        cap=extra.cap,
    )


def segment_results(*, experiment: Experiment, attribute: str) -> dict[str, Any]:
    exclude = CARRYOVER_STAGE if experiment.exclude_carryover else None
    upto = experiment.stopped_at
    levels = aggregation.segment_levels(
        experiment_id=experiment.id, attribute=attribute, exclude_stage=exclude, upto=upto
    )
    kept = [level for level, _ in levels[: aggregation.MAX_SEGMENTS]]
    lookback = aggregation.cuped_lookback(experiment.cuped_lookback_days)

    def label(level: str | None) -> str:
        if level is None:
            return "(missing)"
        return level if level in kept else aggregation.OTHER_SEGMENT

    variants = list(experiment.variants.all())
    control = next(v for v in variants if v.is_control)
    treatments = [v for v in variants if not v.is_control]
    key = "sequential_p_value" if experiment.sequential else "p_value"
    cells: list[dict[str, Any]] = []
    out_levels: dict[str, dict[str, Any]] = {}
    # Ratio metrics are left out: their delta-method sums are not kept per segment.
    links = experiment.metrics.select_related("metric").exclude(metric__kind=Metric.Kind.RATIO)
    for link in links:
        metric: Metric = link.metric
        sums = aggregation.metric_sums(
            experiment_id=experiment.id,
            metric=metric,
            exclude_stage=exclude,
            lookback=lookback if metric.kind == Metric.Kind.MEAN else None,
            upto=upto,
            segment_attribute=attribute,
        )
        merged: dict[tuple[str, int], aggregation.ArmSums] = {}
        for (level, variant_id), s in sums.items():
            merged[(label(level), variant_id)] = _merge(merged.get((label(level), variant_id)), s)
        for level_name in sorted({k[0] for k in merged}):
            arm = _same_shifts(
                {
                    v.id: _variant_stats(merged.get((level_name, v.id)), metric.kind)
                    for v in variants
                }
            )
            entry = out_levels.setdefault(
                level_name, {"level": level_name, "units": 0, "metrics": []}
            )
            comparisons = []
            for treatment in treatments:
                a, b = arm[control.id], arm[treatment.id]
                use_cuped = lookback is not None and a.has_covariate and b.has_covariate
                fixed = stats.compare(a, b, alpha=experiment.alpha, cuped=use_cuped)
                sequential = stats.compare(
                    a, b, alpha=experiment.alpha, sequential=True, cuped=use_cuped
                )
                cell = {
                    "variant": treatment.key,
                    "control": control.key,
                    "units": a.n + b.n,
                    "absolute_effect": _finite(fixed.effect),
                    "ci_low": _finite(fixed.ci_low),
                    "ci_high": _finite(fixed.ci_high),
                    "p_value": fixed.p_value,
                    "sequential_ci_low": _finite(sequential.ci_low),
                    "sequential_ci_high": _finite(sequential.ci_high),
                    "sequential_p_value": sequential.p_value,
                    "cuped_applied": use_cuped,
                }
                comparisons.append(cell)
                cells.append(cell)
            entry["metrics"].append(
                {"metric": metric.key, "role": link.role, "comparisons": comparisons}
            )
    counts = dict(levels)
    for level_name, entry in out_levels.items():
        if level_name == aggregation.OTHER_SEGMENT:
            entry["units"] = sum(n for lvl, n in levels if lvl not in kept and lvl is not None)
        elif level_name == "(missing)":
            entry["units"] = counts.get(None, 0)
        else:
            entry["units"] = counts.get(level_name, 0)
    adjusted = (
        stats.adjust_p_values([c[key] for c in cells], method=experiment.correction)
        if cells
        else []
    )
    for cell, p in zip(cells, adjusted, strict=True):
        cell["p_value_adjusted"] = p
        cell["significant"] = cell["absolute_effect"] is not None and p < experiment.alpha
    ordered = sorted(out_levels.values(), key=lambda e: (e["level"] == "other", -e["units"]))
    return {
        "experiment": experiment.key,
        "attribute": attribute,
        "correction": experiment.correction,
        "inference": "sequential" if experiment.sequential else "fixed_horizon",
        "levels": ordered,
    }
