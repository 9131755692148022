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
    Metric,
    Snapshot,
    SnapshotMetric,
    Variant,
)
from experiments.services import families

CARRYOVER_STAGE = "canary"
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
    """The statistics module's arm from the database sums, shifts included.
    Impossible sums (Σ(y − c)² < (Σ(y − c))²/n) raise instead of being clamped."""
    if sums is None:
        return stats.VariantStats(n=0, sum=0.0, sum_squares=0.0, kind=kind)  # type: ignore[arg-type]
    covariate = {}
    if sums.x_total is not None:
        covariate = {"x_sum": sums.x_total, "x_sum_squares": sums.x_squares, "xy_sum": sums.xy}
    return stats.VariantStats(
        n=sums.n,
        sum=sums.total,
        sum_squares=sums.squares,
        kind=kind,  # type: ignore[arg-type]
        shift=sums.shift if sums.n else 0.0,
        x_shift=sums.x_shift if sums.n else 0.0,
        **covariate,
    )


def _same_shifts(arms: dict[int, stats.VariantStats]) -> dict[int, stats.VariantStats]:
    """An arm without units has no shift from the database; give it the others'
    so that CUPED (which pools the arms' sums) sees one reference."""
    shifted = next((a for a in arms.values() if a.n), None)
    if shifted is None:
        return arms
    out = {}
    for key, arm in arms.items():
        if arm.n == 0 and (arm.shift, arm.x_shift) != (shifted.shift, shifted.x_shift):
            covariate = {}
            if shifted.has_covariate:
                covariate = {"x_sum": 0.0, "x_sum_squares": 0.0, "xy_sum": 0.0}
            arm = stats.VariantStats(
                n=0,
                sum=0.0,
                sum_squares=0.0,
                kind=arm.kind,
                shift=shifted.shift,
                x_shift=shifted.x_shift,
                **covariate,
            )
        out[key] = arm
    return out


def _min_effect(
    link: ExperimentMetric, policy: dict[str, Any], control_mean: float
) -> float | None:
    """The effect worth detecting, in absolute units: the metric's own
    min_effect, else the decision policy's important threshold for it."""
    if link.min_effect:
        return abs(link.min_effect)
    for rule in _important_rules(policy, link.metric.key):
        if "min_absolute" in rule:
            return abs(float(rule["min_absolute"]))
        if control_mean:
            return abs(float(rule["min_relative"]) * control_mean)
    return None


def _important_rules(policy: dict[str, Any], metric_key: str) -> list[dict[str, Any]]:
    return [r for r in policy.get("important") or [] if r.get("metric") == metric_key]


def _compare_arms(
    control: stats.ArmStats,
    treatment: stats.ArmStats,
    *,
    alpha: float,
    cuped: bool,
) -> dict[str, Any]:
    use_cuped = (
        cuped
        and isinstance(control, stats.VariantStats)
        and isinstance(treatment, stats.VariantStats)
        and control.has_covariate
        and treatment.has_covariate
    )
    fixed = stats.compare(control, treatment, alpha=alpha, cuped=use_cuped)
    sequential = stats.compare(control, treatment, alpha=alpha, sequential=True, cuped=use_cuped)
    relative = stats.compare(control, treatment, alpha=alpha, relative=True)
    relative_seq = stats.compare(control, treatment, alpha=alpha, relative=True, sequential=True)
    out: dict[str, Any] = {
        "absolute_effect": _finite(fixed.effect),
        "relative_effect": _finite(relative.effect),
        "se": _finite(fixed.se),
        "relative_se": _finite(relative.se),
        "df": _finite(fixed.df),
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
        assert isinstance(control, stats.VariantStats)
        assert isinstance(treatment, stats.VariantStats)
        adjustment = stats.cuped_adjust(control, treatment)
        plain = stats.compare(control, treatment, alpha=alpha)
        out["cuped"] = {
            "theta": adjustment.theta,
            "variance_reduction": list(adjustment.variance_reduction),
            "unadjusted_ci_low": _finite(plain.ci_low),
            "unadjusted_ci_high": _finite(plain.ci_high),
        }
    return out


def _bayesian_numbers(
    control: stats.ArmStats,
    treatment: stats.ArmStats,
    *,
    experiment: Experiment,
    higher_is_better: bool,
) -> dict[str, Any]:
    """The Bayesian engine's posterior (``stats.bayesian_compare``) of the
    relative effect with the experiment's prior, and of the absolute effect
    with that prior rescaled by the control mean (μ₀·|m_a|, σ₀²·m_a², as
    gbstats rescales it): chance to beat control, risk of shipping either arm
    and the 1 − α credible interval of each."""
    prior = stats.GaussianPrior(
        experiment.prior_mean, experiment.prior_variance, experiment.prior_proper
    )
    control_mean = control.moments().mean if control.n else 0.0
    absolute_prior = stats.GaussianPrior(
        prior.mean * abs(control_mean),
        prior.variance * control_mean**2 if control_mean else prior.variance,
        prior.proper and control_mean != 0.0,
    )
    relative = stats.bayesian_compare(
        control,
        treatment,
        alpha=experiment.alpha,
        relative=True,
        higher_is_better=higher_is_better,
        prior=prior,
    )
    absolute = stats.bayesian_compare(
        control,
        treatment,
        alpha=experiment.alpha,
        relative=False,
        higher_is_better=higher_is_better,
        prior=absolute_prior,
    )
    return {
        "chance_to_win": relative.chance_to_win,
        "risk_control": relative.risk_control,
        "risk_treatment": relative.risk_treatment,
        "relative_mean": relative.mean,
        "relative_sd": relative.sd,
        "relative_ci_low": relative.ci_low,
        "relative_ci_high": relative.ci_high,
        "absolute_mean": absolute.mean,
        "absolute_sd": absolute.sd,
        "absolute_ci_low": absolute.ci_low,
        "absolute_ci_high": absolute.ci_high,
        "prior": {"mean": prior.mean, "variance": prior.variance, "proper": prior.proper},
        "note": relative.reason.value if relative.reason else None,
    }


def _inputs_hash(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# The always-valid numbers of a comparison that are carried from look to look
# (running minimum of p-values, running intersection of intervals).
RUNNING_FIELDS = (
    "sequential_p_value",
    "sequential_ci_low",
    "sequential_ci_high",
    "relative_sequential_ci_low",
    "relative_sequential_ci_high",
)


def _running_key(experiment: Experiment, metric: Any) -> str:
    """What makes two looks the same sequence: change any of it (α, CUPED, the
    carryover rule, how the metric is computed) and the running numbers restart."""
    return _inputs_hash(
        {
            "alpha": experiment.alpha,
            "tau": stats.DEFAULT_TAU,
            "cuped": experiment.cuped_lookback_days,
            "carryover": experiment.exclude_carryover,
            "metric": [
                metric.kind,
                metric.unit_aggregation,
                metric.missing_as_zero,
                metric.cap_kind,
                metric.cap_value,
                metric.numerator_id,
                metric.denominator_id,
            ],
        }
    )[:16]


def _previous_running(
    experiment: Experiment, *, before: datetime
) -> dict[tuple[str, str], dict[str, Any]]:
    """The running numbers of the latest snapshot computed before `before`, per
    (metric, variant): each look starts from the one before it."""
    previous = (
        experiment.snapshots.filter(computed_at__lt=before)
        .order_by("-computed_at", "-id")
        .only("metrics")
        .first()
    )
    if previous is None:
        return {}
    return {
        (m["metric"], c["variant"]): c.get("running") or {}
        for m in previous.metrics
        for c in m.get("comparisons", [])
    }


def _keep_running(comparison: dict[str, Any], previous: dict[str, Any], key: str) -> None:
    """Replace this look's always-valid numbers by the running ones and keep
    what the next look needs under `running` (the look's own values stay under
    `…_look`)."""
    current = {name: comparison.get(name) for name in RUNNING_FIELDS}
    before = previous.get("values") if previous.get("key") == key else None
    running = stats.running_sequential(before, current)
    for name in RUNNING_FIELDS:
        comparison[f"{name}_look"] = current[name]
        comparison[name] = running[name]
    looks = (previous.get("looks", 0) if before is not None else 0) + 1
    comparison["looks"] = looks
    comparison["running"] = {"key": key, "looks": looks, "values": running}


def compute_results(experiment: Experiment, *, as_of: datetime | None = None) -> dict[str, Any]:
    """Everything a snapshot holds, without storing it: from the data up to
    `as_of` (default: now), and never past the experiment's stop. Exposures,
    unit counts and the SRM check are bounded by the same time as the events."""
    arms = _arms(experiment)
    variants = [arms.control, *arms.treatments]
    exclude = CARRYOVER_STAGE if experiment.exclude_carryover else None
    upto = experiment.stopped_at
    if as_of is not None:
        upto = min(upto, as_of) if upto else as_of
    policy = policy_with_defaults(experiment.decision_policy)
    lookback = aggregation.cuped_lookback(experiment.cuped_lookback_days)

    counts = aggregation.exposure_counts(
        experiment_id=experiment.id, exclude_stage=exclude, upto=upto
    )
    carryover = 0
    if exclude:
        carryover = sum(
            aggregation.exposure_counts(experiment_id=experiment.id, upto=upto).values()
        ) - sum(counts.values())
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
    previous = _previous_running(experiment, before=as_of or timezone.now())

    links = list(experiment.metrics.select_related("metric__numerator", "metric__denominator"))
    metrics_out: list[dict[str, Any]] = []
    sums_for_hash: dict[str, Any] = {}
    arm_stats_by_metric: dict[str, dict[int, stats.ArmStats]] = {}
    for link in links:
        metric = link.metric
        arm_stats, units, sums_for_hash[metric.key], about = _metric_arms(
            experiment, metric, variants, exclude=exclude, lookback=lookback, upto=upto
        )
        arm_stats_by_metric[metric.key] = arm_stats
        control_stats = arm_stats[arms.control.id]
        variants_out = [
            {
                "variant": v.key,
                "units": units[v.id],
                "mean": _finite(arm_stats[v.id].mean) if arm_stats[v.id].n else None,
                "std": _finite(math.sqrt(arm_stats[v.id].moments().variance))
                if arm_stats[v.id].n > 1
                else None,
            }
            for v in variants
        ]
        running_key = _running_key(experiment, metric)
        comparisons = []
        for treatment in arms.treatments:
            numbers = _compare_arms(
                control_stats,
                arm_stats[treatment.id],
                alpha=experiment.alpha,
                cuped=lookback is not None,
            )
            comparison = {"variant": treatment.key, "control": arms.control.key, **numbers}
            if experiment.engine == Experiment.Engine.BAYESIAN:
                comparison["bayesian"] = _bayesian_numbers(
                    control_stats,
                    arm_stats[treatment.id],
                    experiment=experiment,
                    higher_is_better=metric.higher_is_better,
                )
                for name in ("chance_to_win", "risk_control", "risk_treatment"):
                    comparison[name] = comparison["bayesian"][name]
            _keep_running(comparison, previous.get((metric.key, treatment.key), {}), running_key)
            comparisons.append(comparison)
        metrics_out.append(
            {
                **about,
                "metric": metric.key,
                "name": metric.name,
                "kind": metric.kind,
                "role": link.role,
                "higher_is_better": metric.higher_is_better,
                "variants": variants_out,
                "comparisons": comparisons,
            }
        )

    families.flag(metrics_out, experiment=experiment, policy=policy, previous=previous)
    _sample_size(
        metrics_out,
        links=links,
        arm_stats_by_metric=arm_stats_by_metric,
        arms=arms,
        experiment=experiment,
        policy=policy,
        daily_by_variant={
            v.id: counts.get(v.id, 0) / elapsed_days if elapsed_days else None for v in variants
        },
    )
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
                important_ci_low=c.get("important_ci_low"),
                important_ci_high=c.get("important_ci_high"),
                important_relative_ci_low=c.get("important_relative_ci_low"),
                important_relative_ci_high=c.get("important_relative_ci_high"),
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
            "engine": [
                experiment.engine,
                experiment.prior_mean,
                experiment.prior_variance,
                experiment.prior_proper,
            ],
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


def _metric_arms(
    experiment: Experiment,
    metric: Any,
    variants: list[Variant],
    *,
    exclude: str | None,
    lookback: timedelta | None,
    upto: datetime | None,
) -> tuple[dict[int, stats.ArmStats], dict[int, int], dict[str, Any], dict[str, Any]]:
    """Per variant id the arm the statistics compare and its unit count, the
    sums for the inputs hash, and what the results say about how the metric
    was computed (its cap; a ratio's parts)."""
    if metric.kind == Metric.Kind.RATIO:
        ratio = aggregation.ratio_sums(
            experiment_id=experiment.id, metric=metric, exclude_stage=exclude, upto=upto
        )
        arms: dict[int, stats.ArmStats] = {}
        for v in variants:
            r = ratio.get(v.id)
            moments = (
                stats.ratio_moments(
                    n=r.n,
                    y_sum=r.y_total,
                    z_sum=r.z_total,
                    y_squares=r.y_squares,
                    z_squares=r.z_squares,
                    yz=r.yz,
                    y_shift=r.y_shift,
                    z_shift=r.z_shift,
                )
                if r
                else None
            )
            arms[v.id] = moments or stats.SampleMoments(n=0, mean=0.0, variance=0.0)
        about = {
            "ratio": {"numerator": metric.numerator.key, "denominator": metric.denominator.key}
        }
        hashed = {key: list(vars(r).values()) for key, r in _by_key(ratio, variants).items()}
        return arms, {v.id: ratio[v.id].n if v.id in ratio else 0 for v in variants}, hashed, about
    sums = aggregation.metric_sums(
        experiment_id=experiment.id,
        metric=metric,
        exclude_stage=exclude,
        lookback=lookback if metric.kind == Metric.Kind.MEAN else None,
        upto=upto,
        segment_attribute=None,
    )
    by_variant = {variant_id: s for (_, variant_id), s in sums.items()}
    arm_stats = _same_shifts(
        {v.id: _variant_stats(by_variant.get(v.id), metric.kind) for v in variants}
    )
    about = {}
    if metric.cap_kind:
        applied = next((s.cap for s in by_variant.values() if s.cap is not None), None)
        about = {"cap": {"kind": metric.cap_kind, "value": metric.cap_value, "applied": applied}}
    hashed = {
        key: [s.n, s.total, s.squares, s.x_total, s.x_squares, s.xy, s.shift, s.cap]
        for key, s in _by_key(by_variant, variants).items()
    }
    return dict(arm_stats), {v.id: arm_stats[v.id].n for v in variants}, hashed, about


def _by_key(by_id: dict[int, Any], variants: list[Variant]) -> dict[str, Any]:
    return {v.key: by_id[v.id] for v in variants if v.id in by_id}


def _sample_size(
    metrics_out: list[dict[str, Any]],
    *,
    links: list[ExperimentMetric],
    arm_stats_by_metric: dict[str, dict[int, stats.ArmStats]],
    arms: _Arms,
    experiment: Experiment,
    policy: dict[str, Any],
    daily_by_variant: dict[int, float | None],
) -> None:
    """Power at the minimum effect, and the units (and days) still needed to
    reach 80 % power with the test the decision uses: the sequential one when
    the experiment decides sequentially, at the level its multiplicity family
    asks of a first rejection (Holm: α/m), with the days counted at the daily
    traffic of the two arms compared, not of the whole experiment."""
    link_of = {link.metric.key: link for link in links}
    for m in metrics_out:
        link = link_of[m["metric"]]
        arm_stats = arm_stats_by_metric[m["metric"]]
        control_stats = arm_stats[arms.control.id]
        for c, treatment in zip(m["comparisons"], arms.treatments, strict=True):
            treated = arm_stats[treatment.id]
            min_effect = _min_effect(link, policy, control_stats.mean if control_stats.n else 0.0)
            test_alpha = c.get("test_alpha", experiment.alpha)
            power = needed = days = None
            total_needed: int | None = None
            # Guardrails are tested one-sided for harm, which these two-sided
            # figures do not describe.
            if (
                min_effect
                and m["role"] != ExperimentMetric.Role.GUARDRAIL
                and control_stats.n > 1
                and treated.n > 1
            ):
                if experiment.sequential:
                    power = stats.sequential_power(
                        control_stats,
                        treated,
                        effect=min_effect,
                        alpha=experiment.alpha,
                        test_alpha=test_alpha,
                    )
                else:
                    power = stats.statistical_power(
                        control_stats, treated, effect=min_effect, alpha=test_alpha
                    )
                daily = [daily_by_variant[arms.control.id], daily_by_variant[treatment.id]]
                pair_daily = sum(d for d in daily if d) or None
                size = {
                    "variance": max(control_stats.variance, 1e-12),
                    "min_effect": min_effect,
                    # 1 / (1 + c/t) = t / (t + c), without overflowing for weights stored unbounded
                    "treatment_fraction": 1 / (1 + arms.control.weight / treatment.weight),
                    "daily_units": pair_daily,
                    "treatment_variance": max(treated.variance, 1e-12),
                }
                if experiment.sequential:
                    estimate = stats.sequential_units_needed(
                        alpha=experiment.alpha, test_alpha=test_alpha, **size
                    )
                else:
                    estimate = stats.units_needed(alpha=test_alpha, **size)
                total_needed = estimate.total_units
                needed = max(estimate.total_units - (control_stats.n + treated.n), 0)
                days = (needed / pair_daily) if pair_daily else None
            c.update(
                {
                    "min_effect": min_effect,
                    "power": _finite(power),
                    "units_needed": needed,
                    "units_needed_total": total_needed,
                    "days_needed": _finite(days),
                }
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
                **{name: c.get(name) for name in COMPARISON_NUMBERS},
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
