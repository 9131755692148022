"""Writes that define experiments and move them through their life:
draft → running → stopped. Each is one transaction that also writes its
audit entry (`by` is the person, None for the platform); the cached
configuration is dropped after commit."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common import validation
from common.audit import AuditAction, write_audit
from common.errors import DomainError
from experiments import config_cache
from experiments.models import Experiment, ExperimentMetric, Metric, Variant
from experiments.services.policy import check_decision_policy


def check_metric_definition(
    *,
    kind: str,
    cap_kind: str = Metric.Cap.NONE,
    cap_value: float | None = None,
    numerator: Metric | None = None,
    denominator: Metric | None = None,
) -> None:
    """The rules of a metric's definition, for the API and the admin alike:
    capping belongs to mean metrics (a fixed cap, or a percentile in (0, 1));
    a ratio metric names a numerator and a denominator metric, neither a ratio."""
    if cap_kind not in Metric.Cap.values:
        raise DomainError(f"cap_kind must be one of {Metric.Cap.values}.", field="cap_kind")
    if cap_kind and kind != Metric.Kind.MEAN:
        raise DomainError("Only mean metrics can be capped.", field="cap_kind")
    if cap_kind and cap_value is None:
        raise DomainError("A capped metric needs cap_value.", field="cap_value")
    if not cap_kind and cap_value is not None:
        raise DomainError("cap_value needs cap_kind (fixed or percentile).", field="cap_value")
    if cap_kind == Metric.Cap.PERCENTILE and not 0 < float(cap_value or 0) < 1:
        raise DomainError("A percentile cap is a share in (0, 1), e.g. 0.99.", field="cap_value")
    if kind == Metric.Kind.RATIO:
        for name, part in (("numerator", numerator), ("denominator", denominator)):
            if part is None:
                raise DomainError(f"A ratio metric needs a {name} metric.", field=name)
            if part.kind == Metric.Kind.RATIO:
                raise DomainError(f"The {name} cannot be a ratio metric itself.", field=name)
    elif numerator is not None or denominator is not None:
        raise DomainError(
            "numerator and denominator belong to ratio metrics only.", field="numerator"
        )


def create_metric(
    *,
    key: str,
    name: str,
    kind: str,
    higher_is_better: bool = True,
    missing_as_zero: bool = True,
    description: str = "",
    unit_aggregation: str = Metric.UnitAggregation.SUM,
    cap_kind: str = Metric.Cap.NONE,
    cap_value: float | None = None,
    numerator: Metric | None = None,
    denominator: Metric | None = None,
) -> Metric:
    """A new metric. 409 for a key in use."""
    if Metric.objects.filter(key=key).exists():
        raise DomainError(
            f"A metric with key '{key}' already exists.", code="conflict", field="key"
        )
    check_metric_definition(
        kind=kind,
        cap_kind=cap_kind,
        cap_value=cap_value,
        numerator=numerator,
        denominator=denominator,
    )
    try:
        with transaction.atomic():
            return Metric.objects.create(
                key=key,
                name=name,
                kind=kind,
                higher_is_better=higher_is_better,
                missing_as_zero=missing_as_zero,
                description=description,
                unit_aggregation=unit_aggregation,
                cap_kind=cap_kind,
                cap_value=cap_value,
                numerator=numerator,
                denominator=denominator,
            )
    except IntegrityError as exc:  # a concurrent request won the race for the key
        raise DomainError(
            f"A metric with key '{key}' already exists.", code="conflict", field="key"
        ) from exc


@dataclass(frozen=True)
class VariantSpec:
    key: str
    weight: float = 1.0
    is_control: bool = False
    payload: Any = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class MetricSpec:
    metric: str
    role: str = ExperimentMetric.Role.PRIMARY
    min_effect: float | None = None


def check_variants(variants: Sequence[VariantSpec]) -> None:
    """The rules of an experiment's variants, for the API and the admin alike."""
    if len(variants) < 2:
        raise DomainError("An experiment needs at least two variants.", field="variants")
    keys = [v.key for v in variants]
    if len(set(keys)) != len(keys):
        raise DomainError("Variant keys must be unique within the experiment.", field="variants")
    controls = sum(1 for v in variants if v.is_control)
    if controls != 1:
        raise DomainError(
            f"Exactly one variant must be the control (is_control: true); got {controls}.",
            field="variants",
        )
    for v in variants:
        try:
            validation.check_weight(v.weight)
        except validation.Invalid as exc:
            message = f"Variant '{v.key}', weight: {exc.message}"
            raise DomainError(message, field="variants") from exc
        try:
            validation.check_json(v.payload)
        except validation.Invalid as exc:
            message = f"Variant '{v.key}', payload: {exc.message}"
            raise DomainError(message, field="variants") from exc


def check_engine(engine: str, prior: Mapping[str, Any] | None) -> dict[str, Any]:
    """The analysis engine and, for the Bayesian one only, its prior
    ({mean, variance > 0, proper}). Returns the prior as a dict."""
    if engine not in Experiment.Engine.values:
        raise DomainError(f"engine must be one of {Experiment.Engine.values}.", field="engine")
    checked = dict(prior or {})
    if checked and engine != Experiment.Engine.BAYESIAN:
        raise DomainError("A prior belongs to the Bayesian engine.", field="prior")
    if float(checked.get("variance", 1.0)) <= 0:
        raise DomainError("The prior's variance must be > 0.", field="prior")
    return checked


def check_metrics(metrics: Sequence[MetricSpec]) -> dict[str, Metric]:
    """The rules of an experiment's metrics: each known and attached once,
    with a role and a finite minimum effect. Returns the metrics by key."""
    metric_keys = [m.metric for m in metrics]
    if len(set(metric_keys)) != len(metric_keys):
        raise DomainError("A metric can be attached to an experiment only once.", field="metrics")
    for m in metrics:
        if m.role not in ExperimentMetric.Role.values:
            raise DomainError(
                f"Metric '{m.metric}': role must be one of "
                f"{', '.join(ExperimentMetric.Role.values)}.",
                field="metrics",
            )
        if m.min_effect is not None:
            try:
                validation.check_number(m.min_effect)
            except validation.Invalid as exc:
                message = f"Metric '{m.metric}', minimum effect: {exc.message}"
                raise DomainError(message, field="metrics") from exc
    known = {m.key: m for m in Metric.objects.filter(key__in=metric_keys)}
    unknown = [k for k in metric_keys if k not in known]
    if unknown:
        raise DomainError(f"Unknown metric(s): {', '.join(unknown)}.", field="metrics")
    return known


ANALYSIS_SETTINGS = ("sequential", "correction", "cuped_lookback_days", "exclude_carryover")
CORRECTIONS = ("holm", "bh")
MAX_CUPED_DAYS = 365


def check_analysis_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """How results are computed (the model's analysis fields), for creation
    and edits alike. TypeError for an unknown name (a programming error),
    DomainError (400) for a bad value."""
    unknown = sorted(set(settings) - set(ANALYSIS_SETTINGS))
    if unknown:
        raise TypeError(f"Unknown experiment settings: {', '.join(unknown)}")
    checked: dict[str, Any] = {}
    for name in ("sequential", "exclude_carryover"):
        if name in settings:
            if not isinstance(settings[name], bool):
                raise DomainError(f"{name} must be true or false.", field=name)
            checked[name] = settings[name]
    if "correction" in settings:
        if settings["correction"] not in CORRECTIONS:
            raise DomainError(
                f"correction must be one of {', '.join(CORRECTIONS)}.", field="correction"
            )
        checked["correction"] = settings["correction"]
    if "cuped_lookback_days" in settings:
        try:
            checked["cuped_lookback_days"] = validation.check_integer(
                settings["cuped_lookback_days"], low=0, high=MAX_CUPED_DAYS
            )
        except validation.Invalid as exc:
            raise DomainError(
                f"cuped_lookback_days: {exc.message}", field="cuped_lookback_days"
            ) from exc
    return checked


def create_experiment(
    *,
    key: str,
    name: str,
    variants: Sequence[VariantSpec],
    metrics: Sequence[MetricSpec] = (),
    hypothesis: str = "",
    traffic_percent: float = 100.0,
    alpha: float = 0.05,
    owner: Any = None,
    decision_policy: dict | None = None,
    by: Any = None,
    engine: str = Experiment.Engine.FREQUENTIST,
    prior: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Experiment:
    """Create a draft experiment with its variants and metrics, all or nothing,
    and audit it as `experiment_created` by `by`. `settings` are the analysis
    fields of the model (sequential, correction, cuped_lookback_days,
    exclude_carryover); `decision_policy` the overrides of the default rules
    (experiments.services.policy); `prior` ({mean, variance, proper}) the
    Bayesian engine's prior on the relative effect."""
    analysis_settings = check_analysis_settings(settings)
    check_variants(variants)
    prior = check_engine(engine, prior)
    known = check_metrics(metrics)
    policy_overrides = check_decision_policy(
        decision_policy, metric_keys=set(Metric.objects.values_list("key", flat=True))
    )
    if Experiment.objects.filter(key=key).exists():
        raise DomainError(
            f"An experiment with key '{key}' already exists.", code="conflict", field="key"
        )
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                key=key,
                name=name,
                hypothesis=hypothesis,
                traffic_percent=traffic_percent,
                alpha=alpha,
                owner=owner,
                decision_policy=policy_overrides,
                **analysis_settings,
                engine=engine,
                prior_mean=float(prior.get("mean", 0.0)),
                prior_variance=float(prior.get("variance", 1.0)),
                prior_proper=bool(prior.get("proper", False)),
            )
            Variant.objects.bulk_create(
                Variant(
                    experiment=experiment,
                    key=v.key,
                    name=v.name or v.key,
                    weight=v.weight,
                    is_control=v.is_control,
                    payload=v.payload,
                    position=i,
                )
                for i, v in enumerate(variants)
            )
            ExperimentMetric.objects.bulk_create(
                ExperimentMetric(
                    experiment=experiment,
                    metric=known[m.metric],
                    role=m.role,
                    min_effect=m.min_effect,
                )
                for m in metrics
            )
            audit_experiment_created(experiment=experiment, by=by)
            transaction.on_commit(lambda: config_cache.invalidate(key))
    except IntegrityError as exc:
        raise DomainError(
            f"An experiment with key '{key}' already exists.", code="conflict", field="key"
        ) from exc
    return experiment


def audit_experiment_created(*, experiment: Experiment, by: Any = None) -> None:
    """Write the `experiment_created` entry, with the variants and metrics as
    stored. Call inside the transaction that created the experiment (the
    admin's add form calls it too)."""
    variants = list(experiment.variants.values("key", "weight", "is_control"))
    metrics = [
        {"metric": m.metric.key, "role": m.role, "min_effect": m.min_effect}
        for m in experiment.metrics.select_related("metric")
    ]
    write_audit(
        action=AuditAction.EXPERIMENT_CREATED,
        subject=experiment,
        actor=by,
        message=f"Experiment '{experiment.key}' created as a draft: "
        f"{len(variants)} variants, {experiment.traffic_percent:g} % of traffic.",
        traffic_percent=experiment.traffic_percent,
        alpha=experiment.alpha,
        variants=variants,
        metrics=metrics,
    )


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def audit_experiment_edit(
    *,
    experiment: Experiment,
    before: dict[str, Any],
    after: dict[str, Any],
    by: Any = None,
) -> bool:
    """Write one `experiment_edited` entry for the fields whose value differs
    between `before` and `after`, with both values in its data
    (`changed`, `before`, `after`). Writes nothing when nothing changed and
    says so by returning False. Call inside the transaction of the edit."""
    changed = sorted(name for name in after if after[name] != before.get(name))
    if not changed:
        return False
    write_audit(
        action=AuditAction.EXPERIMENT_EDITED,
        subject=experiment,
        actor=by,
        message=f"Experiment '{experiment.key}' edited: "
        + "; ".join(f"{n} {_shown(before.get(n))} → {_shown(after[n])}" for n in changed),
        changed=changed,
        before={name: before.get(name) for name in changed},
        after={name: after[name] for name in changed},
    )
    return True


def _transition(
    experiment: Experiment,
    *,
    allowed_from: str | tuple[str, ...],
    to: str,
    verb: str,
    done: str,
    action: AuditAction,
    by: Any,
    **stamp: Any,
) -> Experiment:
    """Move the status with a conditional UPDATE, so that two concurrent calls
    cannot both succeed, and audit the move."""
    sources = (allowed_from,) if isinstance(allowed_from, str) else allowed_from
    with transaction.atomic():
        current = (
            Experiment.objects.select_for_update()
            .values_list("status", flat=True)
            .get(id=experiment.id)
        )
        moved = Experiment.objects.filter(id=experiment.id, status__in=sources).update(
            status=to, updated_at=timezone.now(), **stamp
        )
        if moved != 1:
            raise DomainError(
                f"Cannot {verb} experiment '{experiment.key}': it is {current}, "
                f"and only a {' or '.join(sources)} experiment can be {done}.",
                code="conflict",
            )
        write_audit(
            action=action,
            subject=experiment,
            actor=by,
            message=f"Experiment '{experiment.key}' {done}.",
            before={"status": current},
            after={"status": to},
        )
        transaction.on_commit(lambda: config_cache.invalidate(experiment.key))
    experiment.refresh_from_db()
    return experiment


def start_experiment(*, experiment: Experiment, by: Any = None) -> Experiment:
    """draft → running. 409 without a primary metric or from another status."""
    if not experiment.metrics.filter(role=ExperimentMetric.Role.PRIMARY).exists():
        raise DomainError(
            f"Experiment '{experiment.key}' needs at least one primary metric before it starts.",
            code="conflict",
        )
    return _transition(
        experiment,
        allowed_from=Experiment.Status.DRAFT,
        to=Experiment.Status.RUNNING,
        verb="start",
        done="started",
        action=AuditAction.EXPERIMENT_STARTED,
        by=by,
        started_at=timezone.now(),
    )


def stop_experiment(*, experiment: Experiment, by: Any = None) -> Experiment:
    """running → stopped. 409 from another status."""
    return _transition(
        experiment,
        allowed_from=Experiment.Status.RUNNING,
        to=Experiment.Status.STOPPED,
        verb="stop",
        done="stopped",
        action=AuditAction.EXPERIMENT_STOPPED,
        by=by,
        stopped_at=timezone.now(),
    )


def archive_experiment(*, experiment: Experiment, by: Any = None) -> Experiment:
    """draft or stopped → archived: kept for the record, out of the way.
    409 for a running experiment (stop it first)."""
    return _transition(
        experiment,
        allowed_from=(Experiment.Status.DRAFT, Experiment.Status.STOPPED),
        to=Experiment.Status.ARCHIVED,
        verb="archive",
        done="archived",
        action=AuditAction.EXPERIMENT_ARCHIVED,
        by=by,
        archived_at=timezone.now(),
    )


def set_traffic(*, experiment: Experiment, traffic_percent: float, by: Any = None) -> Experiment:
    """Change the share of units in the experiment, under the edit rule
    (experiments.services.editing): a running experiment's share may only rise."""
    from experiments.services import editing  # editing builds on this module

    return editing.update_experiment(
        experiment=experiment, edit=editing.ExperimentEdit(traffic_percent=traffic_percent), by=by
    )


def rename_experiment(
    *,
    experiment: Experiment,
    name: str | None = None,
    hypothesis: str | None = None,
    by: Any = None,
) -> Experiment:
    """Change the name and / or the hypothesis (None leaves it as it is)."""
    from experiments.services import editing

    return editing.update_experiment(
        experiment=experiment, edit=editing.ExperimentEdit(name=name, hypothesis=hypothesis), by=by
    )
