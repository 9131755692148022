"""Cost of rollout.services.stage_record.stage_report on a
rollout whose current stage was entered 30 days ago, with minute windows for
both versions over those 30 days. Same data shape as bench_rollout.py's
health_with_history (70 requests a minute, the same 7-latency histogram).

Cold = the cache key of the sealed part deleted before the call; warm = the
sealed part read from the cache. Also times evaluate_rollout (the beat path,
which now includes the stage record through gate_view) on the same rollout.
"""

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import bench_env, fresh_database, manage


def ms(f):
    t = time.perf_counter()
    out = f()
    return (time.perf_counter() - t) * 1000, out


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    database = "ion_bench_stage_record"
    fresh_database(database)
    env = bench_env(database)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_rollout"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    manage(env, "migrate", "--noinput")
    import django

    django.setup()
    from django.core.cache import cache

    from rollout.histogram import LatencyHistogram
    from rollout.models import MetricWindow, Rollout
    from rollout.services import stage_record
    from rollout.services.evaluation import evaluate_rollout
    from tests.factories import make_rollout

    rollout = make_rollout("stage30", feature="stage30", stage="canary")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    entered = now - timedelta(days=30)
    Rollout.objects.filter(id=rollout.id).update(stage_entered_at=entered)
    rollout.refresh_from_db()

    histogram = LatencyHistogram()
    for latency in (12, 18, 25, 31, 40, 55, 80):
        histogram.add(latency, 10)
    data = histogram.to_dict()
    minutes = 30 * 24 * 60 + 1  # entered_at .. now inclusive
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
        for m in range(minutes)
        for version in ("stable", "canary")
    ]
    t = time.perf_counter()
    MetricWindow.objects.bulk_create(rows, batch_size=5000)
    insert_s = time.perf_counter() - t
    from django.db import connection

    with connection.cursor() as c:
        c.execute("ANALYZE rollout_metricwindow")

    start = stage_record._floor_minute(rollout.stage_entered_at)
    key = f"rollout:stage-record:{rollout.id}:{int(start.timestamp())}"
    cache.delete(key)

    first_ms, report = ms(lambda: stage_record.stage_report(rollout))
    canary = report.to_dict()["versions"]["canary"]
    warm = [ms(lambda: stage_record.stage_report(rollout))[0] for _ in range(runs)]
    cold = []
    for _ in range(runs):
        cache.delete(key)
        cold.append(ms(lambda: stage_record.stage_report(rollout))[0])
    # the split of a warm call: live part only (the last SEALED_AFTER minutes)
    live = [
        ms(lambda: stage_record._tallies(rollout, now - stage_record.SEALED_AFTER))[0]
        for _ in range(runs)
    ]
    # the beat path on the same rollout: window + stage record + gate + verdict row
    cache.delete(key)
    eval_cold_first, verdict = ms(lambda: evaluate_rollout(rollout=rollout))
    eval_warm = [ms(lambda: evaluate_rollout(rollout=rollout))[0] for _ in range(runs)]
    eval_cold = []
    for _ in range(runs):
        cache.delete(key)
        eval_cold.append(ms(lambda: evaluate_rollout(rollout=rollout))[0])
    r = lambda xs: [round(x, 1) for x in xs]  # noqa: E731
    print(
        json.dumps(
            {
                "windows": len(rows),
                "insert_s": round(insert_s, 1),
                "stage_verdict": report.verdict.value,
                "canary_requests": canary.get("requests"),
                "stage_report_first_call_ms": round(first_ms, 1),
                "stage_report_cold_ms": r(cold),
                "stage_report_cold_median_ms": round(statistics.median(cold), 1),
                "stage_report_warm_ms": r(warm),
                "stage_report_warm_median_ms": round(statistics.median(warm), 1),
                "live_part_read_median_ms": round(statistics.median(live), 1),
                "evaluate_rollout_first_cold_ms": round(eval_cold_first, 1),
                "evaluate_rollout_cold_median_ms": round(statistics.median(eval_cold), 1),
                "evaluate_rollout_warm_median_ms": round(statistics.median(eval_warm), 1),
                "window_verdict": verdict.verdict,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
