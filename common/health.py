"""Liveness of the parts the platform needs: database, cache and broker, each
checked on its own so that /healthz says which one is down, and the age of the
beat's last tick.

Each part is `ok`, `degraded` or `down`. The whole is down (503) only when
the database is: it is the one part without which nothing is served. A cache
or broker that is down degrades the whole (200): the platform still answers
from its in-process copies and the database (common.resilient_cache), and
background work waits for the broker; taking every web process out of a load
balancer for that would turn a degraded platform into a dead one. The beat is
degraded when it has not ticked for three heartbeat intervals, which degrades
the whole too (a page must not fail because no worker runs yet). Each part's
report also carries the details (timings, backend, the exception's text) that
only staff are shown: they name hosts and ports."""

import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from common.selectors import last_beat_tick

BROKER_TIMEOUT_SECONDS = 2.0
OK, DEGRADED, DOWN = "ok", "degraded", "down"
STALE_BEAT_INTERVALS = 3


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"status": OK, **check()}
    except Exception as exc:  # every failure is reported, none is raised
        result = {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _cache() -> dict[str, Any]:
    nonce = uuid.uuid4().hex
    # A cache that falls back when its server is unavailable is asked to raise
    # here instead: this check reports the truth (and its success ends the fallback).
    with getattr(cache, "errors_raised", nullcontext)():
        # A key of its own per check: two checks at once must not read each other's value.
        key = f"healthz:probe:{nonce}"
        cache.set(key, nonce, 10)
        came_back = cache.get(key)
        cache.delete(key)
        if came_back != nonce:
            raise RuntimeError("the value written to the cache did not come back")
    return {"backend": type(cache).__name__}


def _broker() -> dict[str, Any]:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
        transport = conn.transport_cls
        # Connecting proves nothing on the embedded broker (a SQLite file has no
        # server to reach): declaring the default queue reads the broker's
        # storage on every transport, and says how many tasks wait in it.
        declared = conn.default_channel.queue_declare(queue=app.conf.task_default_queue)
    return {"transport": str(transport), "waiting_tasks": declared.message_count}


def _beat() -> dict[str, Any]:
    latest = last_beat_tick()
    if latest is None:
        return {"status": DEGRADED, "last_tick": None}
    age = timezone.now() - latest
    stale = age > STALE_BEAT_INTERVALS * settings.HEARTBEAT_INTERVAL
    return {
        "status": DEGRADED if stale else OK,
        "last_tick": latest.isoformat(),
        "age_seconds": round(age.total_seconds(), 1),
    }


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _database,
    "cache": _cache,
    "broker": _broker,
}
# The parts whose failure takes the whole down; any other failing part degrades it.
ESSENTIAL = frozenset({"database"})


def run_checks() -> tuple[str, dict[str, Any]]:
    """(the whole's status, per-part report with details). The beat is read
    only when the database answers; reading it failing degrades, never downs."""
    report = {name: _timed(check) for name, check in CHECKS.items()}
    if report["database"]["status"] == OK:
        report["beat"] = _timed(_beat)
        if report["beat"]["status"] == DOWN:
            report["beat"]["status"] = DEGRADED
    if any(report[name]["status"] == DOWN for name in ESSENTIAL):
        return DOWN, report
    overall = OK if all(part["status"] == OK for part in report.values()) else DEGRADED
    return overall, report


def status_only(report: dict[str, Any]) -> dict[str, Any]:
    """The report without details, for anyone who is not staff."""
    return {name: {"status": part["status"]} for name, part in report.items()}
