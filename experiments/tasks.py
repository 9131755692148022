"""Thin tasks: take ids, call a service, own the retry policy."""

from celery import shared_task

from experiments.models import Experiment
from experiments.services import analysis


@shared_task(name="experiments.analyse_running_experiments")
def analyse_running_experiments() -> int:
    """Fan out one analysis task per running experiment."""
    ids = list(
        Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("id", flat=True)
    )
    for experiment_id in ids:
        analyse_experiment.delay(experiment_id)
    return len(ids)


@shared_task(
    name="experiments.analyse_experiment",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def analyse_experiment(experiment_id: int) -> int | None:
    snapshot = analysis.analyse_if_changed(experiment_id=experiment_id)
    return snapshot.id if snapshot else None
