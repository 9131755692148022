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
