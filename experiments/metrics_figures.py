"""The experiments' Prometheus figures that need the database: each running
experiment and the age of its latest snapshot (read when /metrics is
scraped), and the moment the scheduled analysis last finished (set by the
worker, labelled by the experiment's key)."""

from django.db.models import Max
from django.utils import timezone

from common import metrics
from common.metrics import ExperimentFigures, ScrapeFigures
from experiments.models import Experiment


def add_experiment_figures(figures: ScrapeFigures) -> None:
    now = timezone.now()
    rows = (
        Experiment.objects.filter(status=Experiment.Status.RUNNING)
        .annotate(latest=Max("snapshots__computed_at"))
        .values_list("key", "latest")
    )
    for key, latest in rows:
        figures.experiments.append(
            ExperimentFigures(
                key=key,
                snapshot_age_seconds=(now - latest).total_seconds() if latest else None,
            )
        )


def mark_analysis_done(*, experiment_id: int) -> None:
    """The scheduled analysis finished: a new snapshot, none needed because the
    inputs did not change, or another worker holding the claim is running it.
    A snapshot's age alone cannot tell "stale" from "nothing new to analyse"."""
    key = Experiment.objects.filter(id=experiment_id).values_list("key", flat=True).first()
    if key is not None:
        metrics.mark_analysis_done(key)
