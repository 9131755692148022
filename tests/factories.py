"""Objects for tests, made through the same services the product uses."""

from experiments.models import Experiment, Metric
from experiments.services import lifecycle


def make_metric(key: str = "adoption", kind: str = "binomial", **extra) -> Metric:
    existing = Metric.objects.filter(key=key).first()
    return existing or lifecycle.create_metric(key=key, name=key.title(), kind=kind, **extra)


def make_experiment(
    key: str = "rec-v2",
    *,
    weights: tuple[float, ...] = (1, 1),
    traffic_percent: float = 100,
    start: bool = True,
    metrics: tuple[str, ...] = ("adoption",),
    payloads: tuple[dict, ...] | None = None,
) -> Experiment:
    for metric in metrics:
        make_metric(metric)
    names = ["control", "treatment"] + [f"treatment-{i}" for i in range(2, len(weights))]
    experiment = lifecycle.create_experiment(
        key=key,
        name=key,
        traffic_percent=traffic_percent,
        variants=[
            lifecycle.VariantSpec(
                key=names[i],
                weight=w,
                is_control=i == 0,
                payload=(payloads[i] if payloads else {"engine": names[i]}),
            )
            for i, w in enumerate(weights)
        ],
        metrics=[lifecycle.MetricSpec(metric=m) for m in metrics],
    )
    if start:
        experiment = lifecycle.start_experiment(experiment=experiment)
    return experiment


def make_rollout(
    key: str = "rec-rollout",
    *,
    feature: str = "recommendations",
    experiment=None,
    stage: str | None = None,
    min_hours: float = 0,
    stages: list[dict] | None = None,
    **extra,
):
    """A rollout with the seed's plan (minimum durations set to `min_hours`),
    optionally moved to `stage` directly."""
    from django.utils import timezone

    from rollout.models import Rollout, default_stages
    from rollout.services import lifecycle

    if stages is None:
        stages = default_stages()
        for plan in stages:
            plan["min_duration_hours"] = min_hours
    rollout = lifecycle.create_rollout(
        key=key, name=key, feature=feature, experiment=experiment, stages=stages, **extra
    )
    if stage:
        # A shortcut for tests of what happens *at* a stage; tests of how a
        # rollout gets there go through the transitions.
        target = rollout.plan().stage(stage)
        Rollout.objects.filter(id=rollout.id).update(
            stage=stage, canary_percent=target.percent, stage_entered_at=timezone.now()
        )
        rollout.refresh_from_db()
    return rollout


def feed(
    rollout, version: str, n: int, *, errors: int = 0, latency_ms: float = 20.0, status: int = 500
) -> None:
    """n requests of `version` (the first `errors` of them failing with
    `status`) through the same store as the middleware, then into the windows."""
    from rollout import metrics_store

    for i in range(n):
        metrics_store.record(rollout.id, version, latency_ms, status if i < errors else 200)
    metrics_store.push()
    metrics_store.flush_to_database()
