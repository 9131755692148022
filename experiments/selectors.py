from django.db.models import Prefetch, QuerySet

from common.errors import DomainError
from experiments.models import (
    COMPARISON_NUMBERS,
    Experiment,
    ExperimentMetric,
    Metric,
    Snapshot,
    SnapshotMetric,
)


def experiments_with_details() -> QuerySet[Experiment]:
    return Experiment.objects.select_related("owner").prefetch_related(
        "variants",
        Prefetch("metrics", queryset=ExperimentMetric.objects.select_related("metric")),
    )


def get_experiment(key: str) -> Experiment:
    experiment = experiments_with_details().filter(key=key).first()
    if experiment is None:
        raise DomainError(f"Unknown experiment '{key}'.", code="not_found")
    return experiment


def list_metrics() -> QuerySet[Metric]:
    return Metric.objects.all()


def snapshot_results(snapshot: Snapshot) -> dict:
    """The `results` answer of the contract, from a stored snapshot."""
    experiment = snapshot.experiment
    return {
        "experiment": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "snapshot_id": snapshot.id,
        "computed_at": snapshot.computed_at.isoformat(),
        "inputs_hash": snapshot.inputs_hash,
        "units": snapshot.units,
        "carryover_excluded": snapshot.carryover_excluded,
        "inference": "sequential" if experiment.sequential else "fixed_horizon",
        "correction": experiment.correction,
        "alpha": experiment.alpha,
        "srm": snapshot.srm,
        "metrics": snapshot.metrics,
        "decision": snapshot.decision,
        "service": snapshot.service,
    }


def latest_snapshot(experiment: Experiment) -> Snapshot:
    snapshot = experiment.snapshots.select_related("experiment").first()
    if snapshot is None:
        raise DomainError(
            f"Experiment '{experiment.key}' has no results yet: run an analysis "
            f"(POST /api/v1/experiments/{experiment.key}/analysis/) or wait for the schedule.",
            code="not_found",
        )
    return snapshot


MAX_SERIES_POINTS = 400


def snapshot_series(experiment: Experiment) -> dict[str, list[dict]]:
    """Per metric, the comparisons of its snapshots over time, thinned to at
    most about MAX_SERIES_POINTS snapshots (always keeping the newest): two
    queries however many snapshots there are, the first reading only ids
    through the (experiment, computed_at) index."""
    ids = list(
        Snapshot.objects.filter(experiment=experiment)
        .order_by("-computed_at", "-id")
        .values_list("id", flat=True)
    )
    step = max(1, -(-len(ids) // MAX_SERIES_POINTS))
    chosen = ids[::step]
    series: dict[str, list[dict]] = {}
    for row in (
        SnapshotMetric.objects.filter(snapshot_id__in=chosen)
        .order_by("computed_at", "id")
        .values("metric", "variant", "computed_at", *COMPARISON_NUMBERS)
    ):
        series.setdefault(row["metric"], []).append(row)
    return series


ANALYSIS_TASK = "experiments.analyse_running_experiments"
DEFAULT_ANALYSIS_MINUTES = 5.0
PERIOD_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "microseconds": 1e-6}


def analysis_every_minutes() -> float:
    """How often beat analyses running experiments (staff may change the
    schedule in the admin): what the pages promise as "next results within".
    One indexed query."""
    from django_celery_beat.models import PeriodicTask

    task = (
        PeriodicTask.objects.filter(task=ANALYSIS_TASK, enabled=True)
        .select_related("interval")
        .first()
    )
    if task is None or task.interval is None:
        return DEFAULT_ANALYSIS_MINUTES
    return task.interval.every * PERIOD_SECONDS.get(task.interval.period, 60) / 60
