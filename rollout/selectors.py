from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from common.errors import DomainError
from rollout.histogram import LatencyHistogram
from rollout.models import MetricWindow, Rollout, StageTransition


def rollouts() -> QuerySet[Rollout]:
    return Rollout.objects.select_related("experiment")


def get_rollout(key: str) -> Rollout:
    rollout = rollouts().filter(key=key).first()
    if rollout is None:
        raise DomainError(f"Unknown rollout '{key}'.", code="not_found")
    return rollout


def get_transition(transition_id: int) -> StageTransition:
    transition = (
        StageTransition.objects.select_related("rollout", "rollout__experiment")
        .filter(id=transition_id)
        .first()
    )
    if transition is None:
        raise DomainError(f"Unknown transition {transition_id}.", code="not_found")
    return transition


def metric_series(rollout: Rollout, *, since: datetime | None = None) -> dict:
    """Per version, per minute: requests, error rate, P50/P95/P99."""
    since = since or timezone.now() - timedelta(hours=6)
    series: dict[str, list[dict]] = {"stable": [], "canary": []}
    rows = (
        MetricWindow.objects.filter(rollout=rollout, minute__gte=since)
        .order_by("minute")
        .values_list("version", "minute", "requests", "errors", "unavailable", "histogram")
    )
    for version, minute, requests, errors, unavailable, histogram in rows:
        quantiles = [None, None, None]
        if histogram:
            hist = LatencyHistogram.from_dict(histogram)
            if hist.count:
                quantiles = hist.quantiles([0.5, 0.95, 0.99])
        series[version].append(
            {
                "minute": minute.isoformat(),
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests if requests else None,
                "availability": 1 - unavailable / requests if requests else None,
                "p50_ms": quantiles[0],
                "p95_ms": quantiles[1],
                "p99_ms": quantiles[2],
            }
        )
    return {"since": since.isoformat(), "versions": series}
