"""Rollout figures, each measured in one run on PostgreSQL and Redis:

1. request-metrics middleware overhead per request: the same routed view
   served through Django's handler with and without the middleware;
2. health evaluation time for a rollout with 30 days of minute windows;
3. breach-to-rollback time, median of 5 drills with a real worker and beat.

    .venv/bin/python bench/bench_rollout.py [--drills 5]
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import ROOT, bench_env, fresh_database, manage


def middleware_overhead(rollout_key: str, n: int = 20000) -> dict:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    def environ():
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/bench/routed/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "127.0.0.1",
            "QUERY_STRING": "unit=u1",
        }

    def run(handler) -> float:
        def start_response(status, headers):
            return None

        for _ in range(500):
            b"".join(handler(environ(), start_response))
        best = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(n):
                b"".join(handler(environ(), start_response))
            best.append((time.perf_counter() - t) / n * 1000)
        return min(best)

    from django.conf import settings

    with_mw = settings.MIDDLEWARE
    without = [m for m in with_mw if m != "rollout.middleware.RequestMetricsMiddleware"]
    results = {}
    for label, middleware in (("without", without), ("with", with_mw), ("without_again", without)):
        with override_settings(MIDDLEWARE=middleware):
            results[label] = run(WSGIHandler())
    base = min(results["without"], results["without_again"])
    return {
        "ms_per_request_without": round(base, 4),
        "ms_per_request_with": round(results["with"], 4),
        "overhead_ms": round(results["with"] - base, 4),
    }


def health_with_history(rollout) -> dict:
    from rollout.histogram import LatencyHistogram
    from rollout.models import MetricWindow
    from rollout.services.evaluation import evaluate_rollout

    histogram = LatencyHistogram()
    for latency in (12, 18, 25, 31, 40, 55, 80):
        histogram.add(latency, 10)
    data = histogram.to_dict()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [
        MetricWindow(
            rollout=rollout,
            version=version,
            minute=now - timedelta(minutes=m),
            requests=70,
            errors=0,
            latency_sum_ms=histogram.sum,
            histogram=data,
        )
        for m in range(30 * 24 * 60)
        for version in ("stable", "canary")
    ]
    MetricWindow.objects.bulk_create(rows, batch_size=5000)
    timings = []
    for _ in range(20):
        t = time.perf_counter()
        verdict = evaluate_rollout(rollout=rollout)
        timings.append((time.perf_counter() - t) * 1000)
    return {
        "windows": len(rows),
        "verdict": verdict.verdict,
        "evaluate_ms_median": round(statistics.median(timings), 2),
        "evaluate_ms_p95": round(sorted(timings)[18], 2),
    }


def drills(env: dict, count: int) -> dict:
    from rollout import metrics_store
    from rollout.models import Rollout
    from tests.factories import make_rollout

    log_path = ROOT / "data" / "bench-drill-worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-B",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    took = []
    try:
        time.sleep(5)
        for i in range(count):
            rollout = make_rollout(f"drill-{i}", feature=f"drill-{i}", stage="canary")
            for j in range(4000):
                metrics_store.record(rollout.id, "stable", 25.0, 200)
                metrics_store.record(rollout.id, "canary", 30.0, 500 if j % 100 < 3 else 200)
            metrics_store.push()
            arrived = time.monotonic()
            while Rollout.objects.get(id=rollout.id).state != Rollout.State.ROLLED_BACK:
                if time.monotonic() - arrived > 120:
                    raise RuntimeError("no rollback within 120 s")
                time.sleep(0.1)
            took.append(time.monotonic() - arrived)
    finally:
        worker.terminate()
        worker.wait(30)
    return {"drills_s": [round(t, 1) for t in took], "median_s": round(statistics.median(took), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drills", type=int, default=5)
    args = parser.parse_args()
    database = "ion_bench_rollout"
    fresh_database(database)
    env = bench_env(database)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_rollout"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    manage(env, "migrate", "--noinput")
    import django

    django.setup()
    from tests.factories import make_rollout

    rollout = make_rollout("bench", feature="bench", stage="canary")
    result = {
        "middleware": middleware_overhead(rollout.key),
        "health_30_days": health_with_history(
            make_rollout("history", feature="history", stage="canary")
        ),
        "breach_to_rollback": drills(env, args.drills),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
