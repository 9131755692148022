"""The two horizons of a rollout's health.

- The sliding window (the last `window_minutes`) drives fast rollback.
- The stage record (every minute since the current stage was entered) drives
  promotion: a quiet hour cannot empty it, so an approval never waits on
  traffic that happened to pause.

The stage record of a long stage spans thousands of minute windows. Minutes
older than SEALED_AFTER can no longer change (samples older than an hour are
refused and flushing copies only recent minutes), so their merged tally is
kept in the cache and only newer minutes are read again on every evaluation.
"""

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from rollout import metrics_store
from rollout.health import ComparisonPolicy, HealthPolicy, HealthReport, Thresholds, evaluate_health
from rollout.histogram import RequestTally
from rollout.models import MetricWindow, Rollout

logger = logging.getLogger(__name__)

SEALED_AFTER = timedelta(minutes=70)
# Keyed by the stage's start, so an entry never goes stale; kept long so the cold
# read (≈ 3 s for 30 days of minute windows) happens about once per stage.
CACHE_SECONDS = 7 * 24 * 3600


def _floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def window_start(rollout: Rollout, now: datetime | None = None) -> datetime:
    """Start of the sliding window: the current (partial) minute plus the
    previous window_minutes − 1 ones."""
    now = now or timezone.now()
    return _floor_minute(now) - timedelta(minutes=max(rollout.window_minutes, 1) - 1)


def _tallies(rollout: Rollout, start: datetime, end: datetime | None = None):
    rows = MetricWindow.objects.filter(rollout=rollout, minute__gte=start)
    if end is not None:
        rows = rows.filter(minute__lt=end)
    windows = list(rows.only("version", "requests", "errors", "unavailable", "histogram"))
    stable = metrics_store.tally_of(w for w in windows if w.version == "stable")
    canary = metrics_store.tally_of(w for w in windows if w.version == "canary")
    return stable, canary


def evaluate(rollout: Rollout, stable: RequestTally, canary: RequestTally) -> HealthReport:
    return evaluate_health(
        stable=stable,
        canary=canary,
        sla=Thresholds(**rollout.sla),
        rollback=Thresholds(**rollout.rollback),
        policy=HealthPolicy(
            min_requests=rollout.min_requests,
            blame_canary_on_global_incident=rollout.blame_canary_on_global_incident,
        ),
        comparison=ComparisonPolicy(),
    )


def window_report(rollout: Rollout, *, now: datetime | None = None) -> HealthReport:
    """The verdict over the sliding window, computed now (nothing stored)."""
    stable, canary = _tallies(rollout, window_start(rollout, now))
    return evaluate(rollout, stable, canary)


def stage_tallies(rollout: Rollout, *, now: datetime | None = None):
    """Stable and canary tallies since the current stage was entered."""
    now = now or timezone.now()
    start = _floor_minute(rollout.stage_entered_at or now)
    sealed = max(start, _floor_minute(now) - SEALED_AFTER)
    key = f"rollout:stage-record:{rollout.id}:{int(start.timestamp())}"
    stable, canary = RequestTally(), RequestTally()
    upto = start
    try:
        kept = cache.get(key)
    except Exception:  # the cache being down costs time, never the verdict
        logger.warning("stage record cache unavailable for rollout %s", rollout.id)
        kept = None
    if kept and start.timestamp() <= kept["upto"] <= sealed.timestamp():
        stable = RequestTally.from_dict(kept["stable"])
        canary = RequestTally.from_dict(kept["canary"])
        upto = datetime.fromtimestamp(kept["upto"], tz=start.tzinfo)
    if upto < sealed:
        old_stable, old_canary = _tallies(rollout, upto, sealed)
        stable.merge(old_stable)
        canary.merge(old_canary)
        try:
            cache.set(
                key,
                {
                    "upto": sealed.timestamp(),
                    "stable": stable.to_dict(),
                    "canary": canary.to_dict(),
                },
                CACHE_SECONDS,
            )
        except Exception:
            logger.warning("stage record cache unavailable for rollout %s", rollout.id)
    live_stable, live_canary = _tallies(rollout, sealed)
    stable.merge(live_stable)
    canary.merge(live_canary)
    return stable, canary


def stage_report(rollout: Rollout, *, now: datetime | None = None) -> HealthReport:
    """The verdict over the stage's cumulative record."""
    stable, canary = stage_tallies(rollout, now=now)
    return evaluate(rollout, stable, canary)


def report_dict(report: HealthReport, *, start: datetime, now: datetime, minutes: int | None):
    data = report.to_dict()
    data["window"] = {
        "start": start.isoformat(),
        "end": now.isoformat(),
        "minutes": minutes,
    }
    return data
