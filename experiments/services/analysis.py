"""Analysis of an experiment: aggregate in the database, compare with the
pure statistics module, decide with the seed's rules, store a snapshot."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from common import metrics
from common.errors import DomainError
from experiments import aggregation, stats
from experiments.aggregation import UnusableData
from experiments.decision import (
    DEFAULT_POLICY,
    MetricComparison,
    decide,
    policy_with_defaults,
)
from experiments.guardrails import service_figures
from experiments.models import (
    COMPARISON_NUMBERS,
    Event,
    Experiment,
    ExperimentMetric,
    Exposure,
    Snapshot,
    SnapshotMetric,
    Variant,
)

CARRYOVER_STAGE = "canary"
DECISION_ROLES = (ExperimentMetric.Role.PRIMARY, ExperimentMetric.Role.GUARDRAIL)
CLAIM_SECONDS = 240
# A watermark only proves "nothing new" for so long: a batch that committed
# late with lower ids than the newest one seen would otherwise go unnoticed.
WATERMARK_TRUST = timedelta(minutes=30)

logger = logging.getLogger(__name__)


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def _finite_json(value: Any) -> Any:
    """The results with every non-finite number as None: the last line before
    a JSON column (PostgreSQL refuses NaN in jsonb, and so does the API's renderer)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def _results(experiment: Experiment, *, as_of: datetime | None = None) -> dict[str, Any]:
    """compute_results, with data it cannot use (an overflow in the statistics,
    beyond the database's own check in aggregation) logged and answered as
    UnusableData (409) instead of failing the caller."""
    try:
        return _finite_json(compute_results(experiment, as_of=as_of))
    except (ArithmeticError, ValueError) as exc:
        logger.exception("experiment %s cannot be analysed", experiment.key)
        raise UnusableData(
            f"Experiment '{experiment.key}' cannot be analysed with the data stored: {exc}."
        ) from exc


@dataclass
class _Arms:
    control: Variant
    treatments: list[Variant]


def _arms(experiment: Experiment) -> _Arms:
    variants = list(experiment.variants.all())
    control = next(v for v in variants if v.is_control)
    return _Arms(control, [v for v in variants if not v.is_control])


def _variant_stats(sums: aggregation.ArmSums | None, kind: str) -> stats.VariantStats:
    if sums is None:
        return stats.VariantStats(n=0, sum=0.0, sum_squares=0.0, kind=kind)  # type: ignore[arg-type]
    covariate = {}
    if sums.x_total is not None:
        covariate = {"x_sum": sums.x_total, "x_sum_squares": sums.x_squares, "xy_sum": sums.xy}
    return stats.VariantStats(
        n=sums.n,
        sum=sums.total,
        sum_squares=max(sums.squares, sums.total**2 / sums.n if sums.n else 0.0),
        kind=kind,  # type: ignore[arg-type]
        **covariate,
    )


def _min_effect(
    link: ExperimentMetric, policy: dict[str, Any], control_mean: float
) -> float | None:
    """The effect worth detecting, in absolute units: the metric's own
    min_effect, else the decision policy's important threshold for it."""
    if link.min_effect:
        return abs(link.min_effect)
    for rule in policy.get("important") or []:
        if rule.get("metric") == link.metric.key:
            if "min_absolute" in rule:
                return abs(float(rule["min_absolute"]))
            if control_mean:
                return abs(float(rule["min_relative"]) * control_mean)
    return None


def _compare_arms(
    control: stats.VariantStats,
    treatment: stats.VariantStats,
    *,
    alpha: float,
    cuped: bool,
) -> dict[str, Any]:
    use_cuped = cuped and control.has_covariate and treatment.has_covariate
    fixed = stats.compare(control, treatment, alpha=alpha, cuped=use_cuped)
    sequential = stats.compare(control, treatment, alpha=alpha, sequential=True, cuped=use_cuped)
    relative = stats.compare(control, treatment, alpha=alpha, relative=True)
    relative_seq = stats.compare(control, treatment, alpha=alpha, relative=True, sequential=True)
    out: dict[str, Any] = {
        "absolute_effect": _finite(fixed.effect),
        "relative_effect": _finite(relative.effect),
        "ci_low": _finite(fixed.ci_low),
        "ci_high": _finite(fixed.ci_high),
        "p_value": fixed.p_value,
        "sequential_ci_low": _finite(sequential.ci_low),
        "sequential_ci_high": _finite(sequential.ci_high),
        "sequential_p_value": sequential.p_value,
        "relative_ci_low": _finite(relative.ci_low),
        "relative_ci_high": _finite(relative.ci_high),
        "relative_sequential_ci_low": _finite(relative_seq.ci_low),
        "relative_sequential_ci_high": _finite(relative_seq.ci_high),
        "cuped_applied": use_cuped,
        "note": fixed.reason.value if fixed.reason else None,
    }
    if use_cuped:
        adjustment = stats.cuped_adjust(control, treatment)
        plain = stats.compare(control, treatment, alpha=alpha)
        out["cuped"] = {
            "theta": adjustment.theta,
            "variance_reduction": list(adjustment.variance_reduction),
            "unadjusted_ci_low": _finite(plain.ci_low),
            "unadjusted_ci_high": _finite(plain.ci_high),
        }
    return out


def _inputs_hash(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def compute_results(experiment: Experiment, *, as_of: datetime | None = None) -> dict[str, Any]:
    """Everything a snapshot holds, without storing it: from the data up to
    `as_of` (default: now), and never past the experiment's stop."""
    arms = _arms(experiment)
    variants = [arms.control, *arms.treatments]
    key_of = {v.id: v.key for v in variants}
    exclude = CARRYOVER_STAGE if experiment.exclude_carryover else None
    upto = experiment.stopped_at
    if as_of is not None:
        upto = min(upto, as_of) if upto else as_of
    policy = policy_with_defaults(experiment.decision_policy)
    lookback = (
        timedelta(days=experiment.cuped_lookback_days) if experiment.cuped_lookback_days else None
    )

    counts = aggregation.exposure_counts(experiment_id=experiment.id, exclude_stage=exclude)
    carryover = 0
    if exclude:
        carryover = sum(aggregation.exposure_counts(experiment_id=experiment.id).values()) - sum(
            counts.values()
        )
    observed = [counts.get(v.id, 0) for v in variants]
    srm = stats.srm_check(observed, [v.weight for v in variants]) if sum(observed) else None
    srm_out = {
        "p_value": srm.p_value if srm else None,
        "flagged": bool(srm and srm.flagged),
        "observed": {v.key: counts.get(v.id, 0) for v in variants},
        "expected": {v.key: e for v, e in zip(variants, srm.expected, strict=True)} if srm else {},
    }

    elapsed_days = None
    if experiment.started_at:
        end = upto or timezone.now()
        elapsed_days = max((end - experiment.started_at).total_seconds() / 86400, 1 / 24)
    units_total = sum(counts.values())
    daily_units = units_total / elapsed_days if elapsed_days else None

    links = list(experiment.metrics.select_related("metric"))
    metrics_out: list[dict[str, Any]] = []
    sums_for_hash: dict[str, Any] = {}
    for link in links:
        metric = link.metric
        sums = aggregation.metric_sums(
            experiment_id=experiment.id,
            metric=metric,
            exclude_stage=exclude,
            lookback=lookback if metric.kind == metric.Kind.MEAN else None,
            upto=upto,
            segment_attribute=None,
        )
        by_variant = {variant_id: s for (_, variant_id), s in sums.items()}
        sums_for_hash[metric.key] = {
            key_of[vid]: [s.n, s.total, s.squares, s.x_total, s.x_squares, s.xy]
            for vid, s in sorted(by_variant.items())
        }
        arm_stats = {v.id: _variant_stats(by_variant.get(v.id), metric.kind) for v in variants}
        control_stats = arm_stats[arms.control.id]
        variants_out = [
            {
                "variant": v.key,
                "units": arm_stats[v.id].n,
                "mean": _finite(arm_stats[v.id].mean) if arm_stats[v.id].n else None,
                "std": _finite(math.sqrt(arm_stats[v.id].variance))
                if arm_stats[v.id].n > 1
                else None,
            }
            for v in variants
        ]
        comparisons = []
        for treatment in arms.treatments:
            numbers = _compare_arms(
                control_stats,
                arm_stats[treatment.id],
                alpha=experiment.alpha,
                cuped=lookback is not None,
            )
            min_effect = _min_effect(link, policy, control_stats.mean if control_stats.n else 0.0)
            power = needed = days = None
            if min_effect and control_stats.n > 1 and arm_stats[treatment.id].n > 1:
                power = stats.statistical_power(
                    control_stats,
                    arm_stats[treatment.id],
                    effect=min_effect,
                    alpha=experiment.alpha,
                )
                estimate = stats.units_needed(
                    variance=max(control_stats.variance, 1e-12),
                    min_effect=min_effect,
                    alpha=experiment.alpha,
                    # 1 / (1 + c/t) = t / (t + c), without overflowing for weights stored unbounded
                    treatment_fraction=1 / (1 + arms.control.weight / treatment.weight),
                    daily_units=daily_units,
                    treatment_variance=max(arm_stats[treatment.id].variance, 1e-12),
                )
                have = control_stats.n + arm_stats[treatment.id].n
                needed = max(estimate.total_units - have, 0)
                days = (needed / daily_units) if daily_units else None
            comparisons.append(
                {
                    "variant": treatment.key,
                    "control": arms.control.key,
                    **numbers,
                    "min_effect": min_effect,
                    "power": _finite(power),
                    "units_needed": needed,
                    "days_needed": _finite(days),
                }
            )
        metrics_out.append(
            {
                "metric": metric.key,
                "name": metric.name,
                "kind": metric.kind,
                "role": link.role,
                "higher_is_better": metric.higher_is_better,
                "variants": variants_out,
                "comparisons": comparisons,
            }
        )

    _adjust_and_flag(metrics_out, experiment)
    figures = service_figures(experiment)
    decision = decide(
        [
            MetricComparison(
                metric=m["metric"],
                role=m["role"],
                variant=c["variant"],
                absolute_effect=c["absolute_effect"],
                relative_effect=c["relative_effect"],
                significant=c["significant"],
                higher_is_better=m["higher_is_better"],
                units_needed=c["units_needed"],
                days_needed=c["days_needed"],
            )
            for m in metrics_out
            for c in m["comparisons"]
        ],
        variants=[v.key for v in arms.treatments],
        srm_flagged=srm_out["flagged"],
        srm_p_value=srm_out["p_value"],
        service=figures,
        policy=policy,
    )
    service_out = (
        {"error_rate": figures.error_rate, "p95_ms": figures.p95_ms, "source": figures.source}
        if figures
        else {}
    )
    inputs = {
        "experiment": {
            "key": experiment.key,
            "seed": experiment.seed,
            "alpha": experiment.alpha,
            "traffic_percent": experiment.traffic_percent,
            "sequential": experiment.sequential,
            "correction": experiment.correction,
            "cuped_lookback_days": experiment.cuped_lookback_days,
            "exclude_carryover": experiment.exclude_carryover,
            "policy": policy if policy != DEFAULT_POLICY else "default",
            "variants": [[v.key, v.weight, v.is_control] for v in variants],
            "metrics": [[link.metric.key, link.role, link.min_effect] for link in links],
            "stopped_at": experiment.stopped_at,
            "as_of": as_of,
        },
        "exposures": srm_out["observed"],
        "sums": sums_for_hash,
        "service": service_out,
    }
    return {
        "srm": srm_out,
        "metrics": metrics_out,
        "decision": decision.as_dict(),
        "service": service_out,
        "units": units_total,
        "carryover_excluded": carryover,
        "inputs_hash": _inputs_hash(inputs),
    }


def _adjust_and_flag(metrics_out: list[dict[str, Any]], experiment: Experiment) -> None:
    """Multiple-testing correction across decision metrics × treatments (Holm
    by default), then `significant` by the experiment's inference mode:
    sequential (always valid) by default, fixed horizon otherwise."""
    key = "sequential_p_value" if experiment.sequential else "p_value"
    decision_cells = [
        c for m in metrics_out if m["role"] in DECISION_ROLES for c in m["comparisons"]
    ]
    adjusted = (
        stats.adjust_p_values(
            [c[key] for c in decision_cells],
            method=experiment.correction,  # type: ignore[arg-type]
        )
        if decision_cells
        else []
    )
    for cell, p in zip(decision_cells, adjusted, strict=True):
        cell["p_value_adjusted"] = p
    for m in metrics_out:
        for c in m["comparisons"]:
            c.setdefault("p_value_adjusted", c[key])
            c["significant"] = bool(
                c["absolute_effect"] is not None and c["p_value_adjusted"] < experiment.alpha
            )


def analyse_experiment(
    *,
    experiment: Experiment,
    trigger: str = Snapshot.Trigger.MANUAL,
    as_of: datetime | None = None,
) -> Snapshot:
    """Compute and store a snapshot of the experiment's results (as of
    `as_of`, e.g. to rebuild the history of a simulated experiment)."""
    if experiment.status == Experiment.Status.DRAFT:
        raise DomainError(
            f"Experiment '{experiment.key}' is a draft: start it before analysing.",
            code="conflict",
        )
    started = time.perf_counter()
    watermark = _watermark(experiment) if as_of is None else {}
    return _store(
        experiment,
        _results(experiment, as_of=as_of),
        trigger=trigger,
        started=started,
        watermark=watermark,
        computed_at=as_of,
    )


def _watermark(experiment: Experiment) -> dict[str, Any]:
    """Cheap signs of new data (two primary-key lookups) and of a changed
    configuration or service level."""
    figures = service_figures(experiment)
    return {
        "event": Event.objects.aggregate(top=Max("id"))["top"],
        "exposure": Exposure.objects.aggregate(top=Max("id"))["top"],
        "experiment_updated": experiment.updated_at.isoformat(),
        "service": [figures.error_rate, figures.p95_ms] if figures else None,
    }


def _store(
    experiment: Experiment,
    results: dict[str, Any],
    *,
    trigger: str,
    started: float,
    watermark: dict[str, Any] | None = None,
    computed_at: datetime | None = None,
) -> Snapshot:
    now = computed_at or timezone.now()
    with transaction.atomic():
        snapshot = Snapshot.objects.create(
            experiment=experiment,
            computed_at=now,
            trigger=trigger,
            inputs_hash=results["inputs_hash"],
            units=results["units"],
            carryover_excluded=results["carryover_excluded"],
            srm=results["srm"],
            metrics=results["metrics"],
            decision=results["decision"],
            service=results["service"],
            watermark=watermark or {},
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        metrics.observe_analysis(
            experiment.key, seconds=snapshot.duration_ms / 1000, units=results["units"]
        )
        SnapshotMetric.objects.bulk_create(
            SnapshotMetric(
                snapshot=snapshot,
                experiment=experiment,
                computed_at=now,
                metric=m["metric"],
                variant=c["variant"],
                units=sum(
                    v["units"]
                    for v in m["variants"]
                    if v["variant"] in (c["variant"], c["control"])
                ),
                **{name: c[name] for name in COMPARISON_NUMBERS},
            )
            for m in results["metrics"]
            for c in m["comparisons"]
        )
    return snapshot


def claim_scheduled_analysis(*, experiment_id: int) -> bool:
    """Claim the right to analyse now, so that two workers handed the same
    experiment (a slow run overlapping the next tick) do not both run it."""
    now = timezone.now()
    from django.db.models import Q

    return (
        Experiment.objects.filter(id=experiment_id, status=Experiment.Status.RUNNING)
        .filter(Q(analysis_claimed_until__isnull=True) | Q(analysis_claimed_until__lt=now))
        .update(analysis_claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        == 1
    )


def release_claim(*, experiment_id: int) -> None:
    Experiment.objects.filter(id=experiment_id).update(analysis_claimed_until=None)


def analyse_if_changed(*, experiment_id: int) -> Snapshot | None:
    """The beat path: analyse unless another worker holds the claim. When the
    inputs are those of the latest snapshot, store nothing new."""
    if not claim_scheduled_analysis(experiment_id=experiment_id):
        return None
    try:
        started = time.perf_counter()
        experiment = Experiment.objects.get(id=experiment_id)
        latest = experiment.snapshots.only("inputs_hash", "watermark", "computed_at").first()
        watermark = _watermark(experiment)
        if (
            latest
            and latest.watermark == watermark
            and timezone.now() - latest.computed_at < WATERMARK_TRUST
        ):
            return None
        results = _results(experiment)
        if latest and results["inputs_hash"] == latest.inputs_hash:
            return None
        return _store(
            experiment,
            results,
            trigger=Snapshot.Trigger.SCHEDULE,
            started=started,
            watermark=watermark,
        )
    finally:
        release_claim(experiment_id=experiment_id)
