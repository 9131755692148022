"""Which comparisons are significant, family by family.

Three families, each corrected for multiplicity on its own, so that one does
not blunt the other:

- primaries: two-sided, by the experiment's inference mode (the running
  always-valid p-value when sequential, the Welch p-value otherwise), adjusted
  with the experiment's correction (Holm by default) across primary metrics ×
  treatments;
- guardrails: one-sided for harm (the direction that is bad for the metric),
  adjusted across guardrail metrics × treatments; `significant` on a guardrail
  means "significantly worse";
- important criteria: every comparison of a metric that the decision policy
  names as an important improvement gets an interval at α/m (Bonferroni over
  the m such comparisons), on the absolute and on the relative scale; the
  decision counts a threshold as met only when that interval clears it.

Secondary metrics are reported unadjusted (they decide nothing).

With the Bayesian engine the same three roles are decided on the posterior
instead (no multiplicity correction, as GrowthBook does it): a primary is
better when its chance to beat control is ≥ `bayesian_min_chance` (95 %) and
the risk of shipping the treatment is below `bayesian_max_risk` (0.25 % of the
control mean), worse when its chance is ≤ 1 − that; a guardrail is worse when
its chance is ≤ 1 − `bayesian_min_chance`; important thresholds are judged on
the 1 − α/m credible intervals. This is not a frequentist guarantee: its A/A
rate of false decisions is measured in bench/README.md.
"""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import norm

from experiments import stats
from experiments.models import Experiment, ExperimentMetric

Cells = list[tuple[dict[str, Any], dict[str, Any]]]


def flag(
    metrics_out: list[dict[str, Any]],
    *,
    experiment: Experiment,
    policy: dict[str, Any],
    previous: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Set `p_value_adjusted`, `significant`, `test_alpha` (the level a first
    rejection in its family needs), the guardrails' `harm_p_value` and the
    important metrics' corrected intervals on every comparison, in place."""
    alpha = experiment.alpha
    key = "sequential_p_value" if experiment.sequential else "p_value"
    cells: Cells = [(m, c) for m in metrics_out for c in m["comparisons"]]
    primaries = [(m, c) for m, c in cells if m["role"] == ExperimentMetric.Role.PRIMARY]
    guardrails = [(m, c) for m, c in cells if m["role"] == ExperimentMetric.Role.GUARDRAIL]

    for _, c in cells:
        c["p_value_adjusted"] = c[key]
        c["test_alpha"] = alpha
    for m, c in guardrails:
        _harm_p_value(
            c,
            units=_pair_units(m, c),
            higher_is_better=m["higher_is_better"],
            experiment=experiment,
            previous=previous.get((m["metric"], c["variant"]), {}),
        )
    _adjust(primaries, experiment, source=key)
    _adjust(guardrails, experiment, source="harm_p_value")
    for _, c in cells:
        c["significant"] = bool(c["absolute_effect"] is not None and c["p_value_adjusted"] < alpha)

    if getattr(experiment, "engine", "frequentist") == "bayesian":
        _flag_bayesian(cells, alpha=alpha, policy=policy)
        return

    important_metrics = {r.get("metric") for r in policy.get("important") or []}
    important = [(m, c) for m, c in cells if m["metric"] in important_metrics]
    if important:
        level = alpha / len(important)
        for m, c in important:
            _important_interval(
                c,
                units=_pair_units(m, c),
                level=level,
                experiment=experiment,
                previous=previous.get((m["metric"], c["variant"]), {}),
            )


def _pair_units(metric: dict[str, Any], cell: dict[str, Any]) -> int:
    return sum(
        v["units"] for v in metric["variants"] if v["variant"] in (cell["variant"], cell["control"])
    )


def _adjust(family: Cells, experiment: Experiment, *, source: str) -> None:
    if not family:
        return
    adjusted = stats.adjust_p_values(
        [c[source] for _, c in family],
        method=experiment.correction,  # type: ignore[arg-type]
    )
    for (_, c), p in zip(family, adjusted, strict=True):
        c["p_value_adjusted"] = p
        # Holm's (and BH's) first rejection needs p < α/m; the sample size
        # asked for is the one that makes that likely.
        c["test_alpha"] = experiment.alpha / len(family)


def _same_sequence(cell: dict[str, Any], previous: dict[str, Any]) -> bool:
    return bool(previous) and previous.get("key") == cell["running"]["key"]


def _harm_p_value(
    c: dict[str, Any],
    *,
    units: int,
    higher_is_better: bool,
    experiment: Experiment,
    previous: dict[str, Any],
) -> None:
    """One-sided p-value for harm: H1 is "the treatment moved the metric the
    bad way" (down when higher is better). Sequential: the always-valid one-sided
    p (`stats.sequential_p_value_one_sided`), kept as a running minimum; fixed:
    the one-sided Welch p."""
    effect, se, df = c.get("absolute_effect"), c.get("se"), c.get("df")
    if effect is None or not se or c.get("note"):
        c["harm_p_value"] = 1.0
        return
    direction = -1 if higher_is_better else 1
    if experiment.sequential:
        p = stats.sequential_p_value_one_sided(
            effect, se, float(units), direction=direction, alpha=experiment.alpha
        )
        c["harm_p_value_look"] = p
        if _same_sequence(c, previous):
            earlier = previous.get("values", {}).get("harm_p_value")
            if earlier is not None:
                p = min(p, earlier)
        c["running"]["values"]["harm_p_value"] = p
    else:
        p = stats.fixed_p_value_one_sided(effect, se, float(df or 1.0), direction=direction)
    c["harm_p_value"] = p


def _important_interval(
    c: dict[str, Any],
    *,
    units: int,
    level: float,
    experiment: Experiment,
    previous: dict[str, Any],
) -> None:
    """The interval an important threshold is judged on: 1 − α/m, by the
    experiment's inference mode, absolute and relative. Sequential intervals
    are confidence sequences and are intersected with the previous look's."""
    c["important_alpha"] = level
    current: dict[str, float | None] = {}
    for prefix, effect, se in (
        ("important", c.get("absolute_effect"), c.get("se")),
        ("important_relative", c.get("relative_effect"), c.get("relative_se")),
    ):
        low = high = None
        if effect is not None and se and not c.get("note"):
            if experiment.sequential:
                half = stats.sequential_half_width(se, float(units), alpha=level)
            else:
                half = stats.fixed_half_width(se, float(c.get("df") or 1.0), alpha=level)
            if math.isfinite(half):
                low, high = effect - half, effect + half
        current[f"{prefix}_ci_low"], current[f"{prefix}_ci_high"] = low, high
    if experiment.sequential:
        before = None
        if _same_sequence(c, previous) and previous.get("important_alpha") == level:
            before = previous.get("values")
        current = stats.running_sequential(before, current)
        c["running"]["values"].update(current)
        c["running"]["important_alpha"] = level
    c.update(current)


BAYESIAN_MIN_CHANCE = 0.95
BAYESIAN_MAX_RISK = 0.0025


def _flag_bayesian(cells: Cells, *, alpha: float, policy: dict[str, Any]) -> None:
    """`significant` and the important intervals from each comparison's
    posterior (`comparison["bayesian"]`), see the module docstring."""
    min_chance = float(policy.get("bayesian_min_chance", BAYESIAN_MIN_CHANCE))
    max_risk = float(policy.get("bayesian_max_risk", BAYESIAN_MAX_RISK))
    important_metrics = {r.get("metric") for r in policy.get("important") or []}
    important = [(m, c) for m, c in cells if m["metric"] in important_metrics]
    z = float(norm.ppf(1.0 - alpha / (2.0 * max(len(important), 1))))
    for m, c in cells:
        posterior = c["bayesian"]
        chance = posterior["chance_to_win"]
        good = m["higher_is_better"]
        effect = c["absolute_effect"]
        moved_well = effect is not None and (effect > 0) == good and effect != 0
        better = chance >= min_chance and posterior["risk_treatment"] < max_risk and moved_well
        worse = chance <= 1.0 - min_chance and effect is not None and not moved_well
        if m["role"] == ExperimentMetric.Role.PRIMARY:
            c["significant"] = bool(better or worse)
        elif m["role"] == ExperimentMetric.Role.GUARDRAIL:
            c["significant"] = bool(worse)
        else:
            c["significant"] = bool(better or worse)
        c["decided_by"] = "bayesian"
    for _, c in important:
        posterior = c["bayesian"]
        if posterior["note"]:
            continue
        c["important_alpha"] = alpha / len(important)
        for prefix, scale in (("important", "absolute"), ("important_relative", "relative")):
            centre, spread = posterior[f"{scale}_mean"], posterior[f"{scale}_sd"]
            c[f"{prefix}_ci_low"] = centre - z * spread
            c[f"{prefix}_ci_high"] = centre + z * spread
