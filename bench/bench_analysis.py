"""Analysis of an experiment with 1 000 000 exposed units and 10 000 000
events on PostgreSQL, next to the bare SQL aggregate, timed in the same run;
then the refresh after a few new events.

    .venv/bin/python bench/bench_analysis.py [--units 1000000] [--events 10000000]

Data are generated inside PostgreSQL (generate_series), so generation is
quick; the first run spends most of its time building the indexes.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import bench_env, fresh_database, manage

SETUP = """
from tests.factories import make_experiment, make_metric
from experiments.models import Experiment
make_metric("session_duration", kind="mean")
e = make_experiment("bench-analysis", metrics=("session_duration",))
Experiment.objects.filter(id=e.id).update(started_at="2026-10-01T00:00:00Z")
print(e.id)
"""

BARE = """
SELECT u.variant_id, COUNT(*), SUM(u.y), SUM(u.y * u.y) FROM (
  SELECT e.variant_id, e.unit_id,
         COALESCE(SUM(CASE WHEN ev.timestamp >= e.exposed_at THEN ev.value ELSE 0 END), 0) AS y
  FROM experiments_exposure e
  LEFT JOIN experiments_event ev ON ev.unit_id = e.unit_id AND ev.metric_id = %(metric)s
       AND ev.timestamp >= e.exposed_at
  WHERE e.experiment_id = %(experiment)s
  GROUP BY e.variant_id, e.unit_id) u
GROUP BY u.variant_id
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    database = "ion_bench_analysis"
    fresh_database(database)
    env = bench_env(database)
    os.environ.update(env)
    manage(env, "migrate", "--noinput")
    experiment_id = int(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])

    import django

    django.setup()
    from django.db import connection

    from experiments.models import Experiment, Metric
    from experiments.services import analysis

    metric_id = Metric.objects.get(key="session_duration").id
    variants = list(Experiment.objects.get(id=experiment_id).variants.values_list("id", flat=True))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE experiments_event SET UNLOGGED")
        cursor.execute(
            "INSERT INTO experiments_exposure (experiment_id, unit_id, variant_id, exposed_at,"
            " attributes, stage) SELECT %s, 'u' || g, CASE WHEN g %% 2 = 0 THEN %s ELSE %s END,"
            " timestamptz '2026-10-01' + (g %% 86400) * interval '20 second', '{}', ''"
            " FROM generate_series(1, %s) g",
            [experiment_id, variants[0], variants[1], args.units],
        )
        # Ten events per unit on average, a tenth of them before the unit's exposure.
        cursor.execute(
            "INSERT INTO experiments_event (event_id, unit_id, metric_id, value, timestamp,"
            " received_at) SELECT 'e' || g, 'u' || (1 + (g::bigint * 7919) %% %s), %s,"
            " floor(random() * 600), timestamptz '2026-10-01' + ((g::bigint * 7919) %% %s %% 86400)"
            " * interval '20 second' + (random() * 30 - 3) * interval '1 day', now()"
            " FROM generate_series(1, %s) g",
            [args.units, metric_id, args.units, args.events],
        )
        cursor.execute("ALTER TABLE experiments_event SET LOGGED")
        cursor.execute("VACUUM ANALYZE experiments_event")
        cursor.execute("VACUUM ANALYZE experiments_exposure")
    generated = time.perf_counter() - started

    experiment = Experiment.objects.get(id=experiment_id)

    def bare() -> float:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(BARE, {"metric": metric_id, "experiment": experiment_id})
            cursor.fetchall()
        return time.perf_counter() - t

    def full(cuped: int) -> float:
        Experiment.objects.filter(id=experiment_id).update(cuped_lookback_days=cuped)
        experiment.refresh_from_db()
        t = time.perf_counter()
        analysis.analyse_experiment(experiment=experiment)
        return time.perf_counter() - t

    bare()  # warm the cache
    timings: dict[str, list[float]] = {
        "bare": [],
        "analysis_cuped_off": [],
        "analysis_cuped_on": [],
    }
    for _ in range(args.repeat):
        timings["bare"].append(bare())
        timings["analysis_cuped_off"].append(full(0))
        timings["analysis_cuped_on"].append(full(14))

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO experiments_event (event_id, unit_id, metric_id, value, timestamp,"
            " received_at) SELECT 'late' || g, 'u' || g, %s, 60, now(), now()"
            " FROM generate_series(1, 1000) g",
            [metric_id],
        )
    t = time.perf_counter()
    changed = analysis.analyse_if_changed(experiment_id=experiment_id)
    refresh_changed = time.perf_counter() - t
    t = time.perf_counter()
    unchanged = analysis.analyse_if_changed(experiment_id=experiment_id)
    refresh_unchanged = time.perf_counter() - t

    med = {k: statistics.median(v) for k, v in timings.items()}
    print(
        json.dumps(
            {
                "units": args.units,
                "events": args.events,
                "generation_s": round(generated, 1),
                "median_s": {k: round(v, 3) for k, v in med.items()},
                "ratio_cuped_off": round(med["analysis_cuped_off"] / med["bare"], 3),
                "ratio_cuped_on": round(med["analysis_cuped_on"] / med["bare"], 3),
                "refresh_after_1000_new_events_s": round(refresh_changed, 3),
                "refresh_stored_a_snapshot": changed is not None,
                "refresh_unchanged_s": round(refresh_unchanged, 3),
                "refresh_unchanged_stored": unchanged is not None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
