"""Thin tasks: take ids, call a service, own the retry policy."""

import logging

from celery import shared_task

from common.errors import DomainError
from experiments.metrics_figures import mark_analysis_done
from experiments.models import Experiment
from experiments.services import analysis

logger = logging.getLogger(__name__)


@shared_task(name="experiments.analyse_running_experiments")
def analyse_running_experiments() -> int:
    """Fan out one analysis task per running experiment."""
    ids = list(
        Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("id", flat=True)
    )
    for experiment_id in ids:
        try:
            analyse_experiment.delay(experiment_id)
        except Exception:  # eager mode runs it here: one experiment never stops the rest
            logger.exception("analysis of experiment %s failed", experiment_id)
    return len(ids)


@shared_task(
    name="experiments.analyse_experiment",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def analyse_experiment(experiment_id: int) -> int | None:
    """Analyse one experiment; data it cannot use (aggregation.UnusableData) is
    logged and not retried: retrying would meet the same rows."""
    try:
        snapshot = analysis.analyse_if_changed(experiment_id=experiment_id)
    except DomainError as exc:
        logger.warning("experiment %s not analysed: %s", experiment_id, exc.message)
        return None
    mark_analysis_done(experiment_id=experiment_id)
    return snapshot.id if snapshot else None
