from django.db.models import Count, F, Prefetch, QuerySet, Window
from django.db.models.functions import Mod, RowNumber

from common.errors import DomainError
from experiments.models import Experiment, ExperimentMetric, Metric, Snapshot, SnapshotMetric


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
    """Per metric, the comparisons of its snapshots over time, thinned in the
    database to at most about MAX_SERIES_POINTS per metric and variant (two
    queries, however many snapshots there are)."""
    rows = SnapshotMetric.objects.filter(experiment=experiment)
    longest = (
        rows.values("metric", "variant")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("n", flat=True)
        .first()
        or 0
    )
    step = max(1, -(-longest // MAX_SERIES_POINTS))
    numbered = rows.annotate(
        rn=Window(
            RowNumber(),
            partition_by=[F("metric"), F("variant")],
            order_by=F("computed_at").desc(),
        )
    )
    if step > 1:
        # Counted from the newest, so the latest snapshot is always drawn.
        numbered = numbered.annotate(keep=Mod(F("rn") - 1, step)).filter(keep=0)
    series: dict[str, list[dict]] = {}
    for row in numbered.order_by("computed_at").values(
        "metric",
        "variant",
        "computed_at",
        "absolute_effect",
        "ci_low",
        "ci_high",
        "sequential_ci_low",
        "sequential_ci_high",
        "p_value",
        "sequential_p_value",
    ):
        series.setdefault(row["metric"], []).append(row)
    return series
