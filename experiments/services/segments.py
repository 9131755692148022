"""Results broken down by an exposure attribute: the 20 largest levels plus
"other", with the multiple-testing correction applied across segments."""

from typing import Any

from experiments import aggregation, stats
from experiments.models import Experiment, Metric
from experiments.services.analysis import CARRYOVER_STAGE, _finite, _variant_stats

MAX_ATTRIBUTE_LENGTH = 64


def segment_results(*, experiment: Experiment, attribute: str) -> dict[str, Any]:
    exclude = CARRYOVER_STAGE if experiment.exclude_carryover else None
    levels = aggregation.segment_levels(
        experiment_id=experiment.id, attribute=attribute, exclude_stage=exclude
    )
    kept = [level for level, _ in levels[: aggregation.MAX_SEGMENTS]]

    def label(level: str | None) -> str:
        if level is None:
            return "(missing)"
        return level if level in kept else aggregation.OTHER_SEGMENT

    variants = list(experiment.variants.all())
    control = next(v for v in variants if v.is_control)
    treatments = [v for v in variants if not v.is_control]
    cells: list[dict[str, Any]] = []
    out_levels: dict[str, dict[str, Any]] = {}
    for link in experiment.metrics.select_related("metric"):
        metric: Metric = link.metric
        sums = aggregation.metric_sums(
            experiment_id=experiment.id,
            metric=metric,
            exclude_stage=exclude,
            upto=experiment.stopped_at,
            segment_attribute=attribute,
        )
        merged: dict[tuple[str, int], list[float]] = {}
        for (level, variant_id), s in sums.items():
            acc = merged.setdefault((label(level), variant_id), [0, 0.0, 0.0])
            acc[0] += s.n
            acc[1] += s.total
            acc[2] += s.squares
        for level_name in sorted({k[0] for k in merged}):
            arm = {
                v.id: _variant_stats(
                    aggregation.ArmSums(*merged[(level_name, v.id)])
                    if (level_name, v.id) in merged
                    else None,
                    metric.kind,
                )
                for v in variants
            }
            entry = out_levels.setdefault(
                level_name, {"level": level_name, "units": 0, "metrics": []}
            )
            comparisons = []
            for treatment in treatments:
                fixed = stats.compare(arm[control.id], arm[treatment.id], alpha=experiment.alpha)
                cell = {
                    "variant": treatment.key,
                    "control": control.key,
                    "units": arm[control.id].n + arm[treatment.id].n,
                    "absolute_effect": _finite(fixed.effect),
                    "ci_low": _finite(fixed.ci_low),
                    "ci_high": _finite(fixed.ci_high),
                    "p_value": fixed.p_value,
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
        stats.adjust_p_values([c["p_value"] for c in cells], method=experiment.correction)
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
        "levels": ordered,
    }
