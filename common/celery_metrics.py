"""Celery task runs, failures, retries and run time, from Celery's signals,
and the worker's own exporter.

The worker serves its metrics on WORKER_METRICS_PORT (unset: not at all),
started once the worker is ready, in its main process. With the prefork pool
(the default) tasks run in child processes: set PROMETHEUS_MULTIPROC_DIR for
the worker too, so that the exporter adds up every child's values. Connected
in CommonConfig.ready(), so every process that runs tasks counts them (the
web process too when tasks run eagerly)."""

from __future__ import annotations

import logging
import threading
import time

from celery import signals
from django.conf import settings
from prometheus_client import start_http_server

from common import metrics

logger = logging.getLogger(__name__)

_started: dict[str, float] = {}
_lock = threading.Lock()
_exporter_started = False


def _name(sender, task=None) -> str:
    task = task or sender
    return getattr(task, "name", None) or str(sender)


@signals.task_prerun.connect
def _on_prerun(task_id=None, **_kwargs) -> None:
    if task_id:
        with _lock:
            _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _on_postrun(sender=None, task_id=None, task=None, **_kwargs) -> None:
    name = _name(sender, task)
    metrics.TASK_RUNS.labels(name).inc()
    with _lock:
        started = _started.pop(task_id, None) if task_id else None
    if started is not None:
        metrics.TASK_DURATION.labels(name).observe(time.perf_counter() - started)


@signals.task_failure.connect
def _on_failure(sender=None, **_kwargs) -> None:
    metrics.TASK_FAILURES.labels(_name(sender)).inc()


@signals.task_retry.connect
def _on_retry(sender=None, **_kwargs) -> None:
    metrics.TASK_RETRIES.labels(_name(sender)).inc()


@signals.worker_ready.connect
def _start_exporter(**_kwargs) -> None:
    global _exporter_started
    port = settings.WORKER_METRICS_PORT
    if not port or _exporter_started:
        return
    start_http_server(
        port, addr=settings.WORKER_METRICS_ADDRESS, registry=metrics.process_registry()
    )
    _exporter_started = True
    logger.info("worker metrics on %s:%s", settings.WORKER_METRICS_ADDRESS, port)
