from django.db.models import Prefetch, QuerySet

from common.errors import DomainError
from experiments.models import Experiment, ExperimentMetric, Metric


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
