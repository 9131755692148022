"""Liveness of the parts the platform needs: database, cache and broker, each
checked on its own so that /healthz says which one is down."""

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from common.models import WorkerHeartbeat

BROKER_TIMEOUT_SECONDS = 2.0


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"status": "ok", **check()}
    except Exception as exc:  # every failure is reported, none is raised
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _cache() -> dict[str, Any]:
    nonce = uuid.uuid4().hex
    cache.set("healthz:probe", nonce, 10)
    if cache.get("healthz:probe") != nonce:
        raise RuntimeError("the value written to the cache did not come back")
    return {"backend": type(cache).__name__}


def _broker() -> dict[str, Any]:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
        transport = conn.transport_cls
    return {"transport": str(transport)}


def _beat() -> dict[str, Any]:
    latest = (
        WorkerHeartbeat.objects.filter(source=WorkerHeartbeat.Source.BEAT)
        .values_list("created_at", flat=True)
        .first()
    )
    if latest is None:
        return {"last_tick": None}
    return {
        "last_tick": latest.isoformat(),
        "age_seconds": round((timezone.now() - latest).total_seconds(), 1),
    }


REQUIRED_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _database,
    "cache": _cache,
    "broker": _broker,
}


def run_checks() -> tuple[bool, dict[str, Any]]:
    """(all required parts ok, per-part report). The beat tick is reported for
    information only: a page must not fail because no worker runs yet."""
    report = {name: _timed(check) for name, check in REQUIRED_CHECKS.items()}
    healthy = all(part["status"] == "ok" for part in report.values())
    if report["database"]["status"] == "ok":
        report["beat"] = _timed(_beat)
    return healthy, report
