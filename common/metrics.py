"""Every Prometheus metric of the platform, in one module.

Two kinds of figures:

* Counted in the process that sees them (requests, ingestion, analyses, tasks,
  LLM calls): prometheus_client counters and histograms. Under gunicorn with
  several workers, or a prefork Celery worker, set PROMETHEUS_MULTIPROC_DIR so
  that each process writes its values to a shared folder and /metrics (or the
  worker's exporter) adds them up.
* Read from the database when scraped (verdicts, canary share, snapshot and
  beat age, rollbacks and transitions from the append-only audit log): the same
  on every process and every instance, so they are right under any number of
  workers; aggregate them with `max by (...)`, never `sum`. Apps register the
  readers (`register_source`) in their `AppConfig.ready()`: this module sits at
  the bottom of the app layers and imports nothing of Django, so the pure
  modules above may use it too.

Labels are bounded: rollout, version, experiment and task keys, backends,
results; never unit or user ids.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

VERSION = "0.1.0"

BUILD_INFO = Info("ion_platform", "Build information of the platform")
BUILD_INFO.info({"version": VERSION})

HEALTH_CHECK_FAILURES = Counter(
    "ion_healthz_failures_total", "Health checks that failed, by component", ["component"]
)

CACHE_FALLBACKS = Counter(
    "ion_cache_fallbacks_total",
    "Cache operations answered without the shared cache because it was unavailable, "
    "by key family and operation (common.resilient_cache)",
    ["cache", "operation"],
)

# --- rollouts: fed from the request-metrics store's batches, once a second -------------

# Around the seed's service levels: P95 < 100 ms (SLA) and > 200 ms (rollback).
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5, 10)

ROLLOUT_REQUESTS = Counter(
    "ion_rollout_requests_total", "Requests routed through a rollout", ["rollout", "version"]
)
ROLLOUT_ERRORS = Counter(
    "ion_rollout_request_errors_total",
    "Routed requests that failed (5xx, unhandled exception or no answer)",
    ["rollout", "version"],
)
ROLLOUT_LATENCY = Histogram(
    "ion_rollout_request_duration_seconds",
    "Latency of routed requests",
    ["rollout", "version"],
    buckets=LATENCY_BUCKETS_SECONDS,
)

HTTP_SERVER_ERRORS = Counter(
    "ion_http_server_errors_total", "Responses with a 5xx status, by view", ["view"]
)

# --- experiments ------------------------------------------------------------------------

ASSIGNMENTS = Counter(
    "ion_assignments_total",
    "Assignments answered, by experiment and outcome",
    ["experiment", "result"],
)
EXPOSURES_WRITTEN = Counter(
    "ion_exposures_written_total",
    "Exposures written: first exposures of served units (an insert that another process may "
    "have won) and accepted ingested exposures",
    ["experiment", "source"],
)
EVENTS_INGESTED = Counter(
    "ion_events_ingested_total", "Metric events received, by result", ["result"]
)
ANALYSIS_DURATION = Histogram(
    "ion_analysis_duration_seconds",
    "Time to compute and store an experiment's snapshot",
    ["experiment"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
ANALYSIS_UNITS = Counter(
    "ion_analysis_units_read_total",
    "Units whose per-unit sums the stored analyses read",
    ["experiment"],
)
ANALYSIS_LAST_SUCCESS = Gauge(
    "ion_experiment_analysis_last_success_timestamp_seconds",
    "When the scheduled analysis of the experiment last finished (a new snapshot or none "
    "needed because nothing changed)",
    ["experiment"],
    multiprocess_mode="max",
)

# --- platform ---------------------------------------------------------------------------

TASK_RUNS = Counter("ion_celery_task_runs_total", "Celery task runs finished", ["task"])
TASK_FAILURES = Counter("ion_celery_task_failures_total", "Celery task runs that raised", ["task"])
TASK_RETRIES = Counter("ion_celery_task_retries_total", "Celery task retries scheduled", ["task"])
TASK_DURATION = Histogram(
    "ion_celery_task_duration_seconds",
    "Run time of Celery tasks",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)

LLM_CALLS = Counter("ion_llm_calls_total", "Mentor replies asked of a backend", ["backend"])
LLM_ERRORS = Counter(
    "ion_llm_errors_total", "Mentor replies the backend failed to give", ["backend"]
)
LLM_DURATION = Histogram(
    "ion_llm_call_duration_seconds",
    "Time the backend took for a reply, retries included",
    ["backend"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30),
)
RECOMMENDATION_SERVING = Histogram(
    "ion_recommendation_serving_seconds",
    "Time to compute recommendations, by version",
    ["version"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)


def add_rollout_batch(
    *,
    rollout: str,
    version: str,
    requests: int,
    errors: int,
    latency_counts: Mapping[int, int],
    latency_sum_seconds: float,
) -> None:
    """Add one batch of a rollout version's requests, already tallied by the
    request-metrics store. `latency_counts` maps an index of
    LATENCY_BUCKETS_SECONDS (len() for +Inf) to the number of requests in that
    bucket only (not cumulative)."""
    ROLLOUT_REQUESTS.labels(rollout, version).inc(requests)
    # Created at zero with the requests, so that errors/requests share their samples.
    ROLLOUT_ERRORS.labels(rollout, version).inc(errors)
    histogram = ROLLOUT_LATENCY.labels(rollout, version)
    # prometheus_client has no batch observe (its maintainers point to custom
    # collectors, which multiprocess mode does not add up); its per-bucket
    # values are what observe() increments, so adding to them is the same
    # result as one observe() per request without the per-request cost.
    # tests/common/test_metrics.py pins this against observe().
    for index, count in latency_counts.items():
        histogram._buckets[index].inc(count)
    histogram._sum.inc(latency_sum_seconds)


def latency_bucket_of(seconds: float) -> int:
    """The index in LATENCY_BUCKETS_SECONDS (len() for +Inf) that `seconds` falls in."""
    for index, bound in enumerate(LATENCY_BUCKETS_SECONDS):
        if seconds <= bound:
            return index
    return len(LATENCY_BUCKETS_SECONDS)


def count_server_error(view: str) -> None:
    HTTP_SERVER_ERRORS.labels(view).inc()


def count_assignment(experiment: str, *, in_experiment: bool) -> None:
    ASSIGNMENTS.labels(experiment, "in" if in_experiment else "out").inc()


def count_exposures(experiment: str, count: int = 1, *, source: str = "served") -> None:
    if count:
        EXPOSURES_WRITTEN.labels(experiment, source).inc(count)


def count_ingested_events(*, accepted: int, duplicates: int, rejected: int) -> None:
    for result, count in (
        ("accepted", accepted),
        ("duplicate", duplicates),
        ("rejected", rejected),
    ):
        EVENTS_INGESTED.labels(result).inc(count)


def observe_analysis(experiment: str, *, seconds: float, units: int) -> None:
    ANALYSIS_DURATION.labels(experiment).observe(seconds)
    ANALYSIS_UNITS.labels(experiment).inc(max(0, units))


def mark_analysis_done(experiment: str) -> None:
    ANALYSIS_LAST_SUCCESS.labels(experiment).set(time.time())


def observe_llm_call(backend: str, *, seconds: float, failed: bool) -> None:
    LLM_CALLS.labels(backend).inc()
    if failed:
        LLM_ERRORS.labels(backend).inc()
    LLM_DURATION.labels(backend).observe(seconds)


def observe_recommendations(version: str, seconds: float) -> None:
    RECOMMENDATION_SERVING.labels(version).observe(seconds)


# --- read from the database when scraped ------------------------------------------------


@dataclass(frozen=True)
class RolloutFigures:
    key: str
    state: str
    canary_share: float  # 0 to 1
    verdict: str  # "" before the first evaluation
    sla_error_rate: float
    sla_p95_seconds: float
    rollback_error_rate: float
    rollback_p95_seconds: float
    rollbacks: Mapping[str, int] = field(default_factory=dict)  # trigger -> count
    transitions: Mapping[str, int] = field(default_factory=dict)  # outcome -> count


@dataclass(frozen=True)
class ExperimentFigures:
    key: str
    snapshot_age_seconds: float | None  # None: no snapshot yet


@dataclass
class ScrapeFigures:
    rollouts: list[RolloutFigures] = field(default_factory=list)
    experiments: list[ExperimentFigures] = field(default_factory=list)
    beat_age_seconds: float | None = None
    rollout_states: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    ok: bool = True


Source = Callable[[ScrapeFigures], None]
_sources: list[Source] = []


def register_source(source: Source) -> None:
    """`source` fills its part of the figures from the database at scrape time."""
    if source not in _sources:
        _sources.append(source)


class DatabaseFiguresCollector(Collector):
    """Reads the registered sources at most every CACHE_SECONDS, so that a
    Prometheus scraping every instance often costs a few queries at most."""

    CACHE_SECONDS = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, ScrapeFigures] | None = None

    def figures(self) -> ScrapeFigures:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.CACHE_SECONDS:
                figures = ScrapeFigures()
                try:
                    for source in _sources:
                        source(figures)
                except Exception:  # a scrape must answer even when the database does not
                    logger.exception("reading the database figures for /metrics failed")
                    figures = ScrapeFigures(ok=False)
                self._cached = (now, figures)
            return self._cached[1]

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def collect(self) -> Iterator:
        figures = self.figures()
        yield GaugeMetricFamily(
            "ion_database_figures_ok",
            "1 when the figures read from the database at scrape time could be read",
            value=1 if figures.ok else 0,
        )
        if not figures.ok:
            return
        yield from _rollout_families(figures)
        age = GaugeMetricFamily(
            "ion_experiment_snapshot_age_seconds",
            "Age of each running experiment's latest snapshot (+Inf: none yet)",
            labels=["experiment"],
        )
        running = GaugeMetricFamily(
            "ion_experiment_running", "1 for each running experiment", labels=["experiment"]
        )
        for experiment in figures.experiments:
            running.add_metric([experiment.key], 1)
            value = experiment.snapshot_age_seconds
            age.add_metric([experiment.key], math.inf if value is None else value)
        yield running
        yield age
        beat = figures.beat_age_seconds
        yield GaugeMetricFamily(
            "ion_beat_last_tick_age_seconds",
            "Seconds since beat's last heartbeat (+Inf: never)",
            value=math.inf if beat is None else beat,
        )


def _rollout_families(figures: ScrapeFigures) -> Iterable:
    share = GaugeMetricFamily(
        "ion_rollout_canary_share_ratio",
        "Share of units on the new version (0 to 1)",
        labels=["rollout"],
    )
    verdict = GaugeMetricFamily(
        "ion_rollout_health_verdict",
        "1 for the rollout's latest sliding-window health verdict, 0 for the others",
        labels=["rollout", "verdict"],
    )
    state = GaugeMetricFamily(
        "ion_rollout_state",
        "1 for the rollout's state, 0 for the others",
        labels=["rollout", "state"],
    )
    thresholds = {
        name: GaugeMetricFamily(name, text, labels=["rollout"])
        for name, text in (
            ("ion_rollout_sla_max_error_ratio", "SLA: highest acceptable error rate"),
            ("ion_rollout_sla_max_p95_seconds", "SLA: highest acceptable P95 latency"),
            (
                "ion_rollout_rollback_max_error_ratio",
                "Error rate above which the canary is rolled back",
            ),
            (
                "ion_rollout_rollback_max_p95_seconds",
                "P95 latency above which the canary is rolled back",
            ),
        )
    }
    rollbacks = CounterMetricFamily(
        "ion_rollout_rollbacks",
        "Rollbacks in the audit log, by trigger (automatic or manual)",
        labels=["rollout", "trigger"],
    )
    transitions = CounterMetricFamily(
        "ion_rollout_transitions",
        "Stage transition steps in the audit log, by outcome",
        labels=["rollout", "outcome"],
    )
    for rollout in figures.rollouts:
        share.add_metric([rollout.key], rollout.canary_share)
        for name in figures.verdicts:
            verdict.add_metric([rollout.key, name], 1 if rollout.verdict == name else 0)
        for name in figures.rollout_states:
            state.add_metric([rollout.key, name], 1 if rollout.state == name else 0)
        thresholds["ion_rollout_sla_max_error_ratio"].add_metric(
            [rollout.key], rollout.sla_error_rate
        )
        thresholds["ion_rollout_sla_max_p95_seconds"].add_metric(
            [rollout.key], rollout.sla_p95_seconds
        )
        thresholds["ion_rollout_rollback_max_error_ratio"].add_metric(
            [rollout.key], rollout.rollback_error_rate
        )
        thresholds["ion_rollout_rollback_max_p95_seconds"].add_metric(
            [rollout.key], rollout.rollback_p95_seconds
        )
        for trigger in ("automatic", "manual"):
            rollbacks.add_metric([rollout.key, trigger], rollout.rollbacks.get(trigger, 0))
        for outcome, count in sorted(rollout.transitions.items()):
            transitions.add_metric([rollout.key, outcome], count)
    yield from (share, verdict, state, *thresholds.values(), rollbacks, transitions)


DATABASE_FIGURES = DatabaseFiguresCollector()


class _BuildInfoCollector(Collector):
    """Multiprocess mode adds up only counters, gauges and histograms: the
    build information is given by the scraping process itself."""

    def collect(self) -> Iterator:
        family = InfoMetricFamily("ion_platform", "Build information of the platform")
        family.add_metric([], {"version": VERSION})
        yield family


# This process's metrics and the database figures; the worker's exporter serves
# REGISTRY alone (see process_registry), so it never queries the database.
_WEB_REGISTRY = CollectorRegistry()
_WEB_REGISTRY.register(REGISTRY)  # type: ignore[arg-type]
_WEB_REGISTRY.register(DATABASE_FIGURES)


def registry() -> CollectorRegistry:
    """The registry /metrics serves: every process's values under
    PROMETHEUS_MULTIPROC_DIR, this process's otherwise; plus the database figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        merged.register(_BuildInfoCollector())
        merged.register(DATABASE_FIGURES)
        return merged
    return _WEB_REGISTRY


def process_registry() -> CollectorRegistry:
    """For a process without the database figures (the Celery worker's exporter)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        merged.register(_BuildInfoCollector())
        return merged
    return REGISTRY
