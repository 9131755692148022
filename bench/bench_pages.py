"""Server time of the experiment and rollout pages with 50 experiments, each
with 90 days of 5-minute snapshots, and a rollout with 90 days of minute
windows, on PostgreSQL.

    .venv/bin/python bench/bench_pages.py [--experiments 50] [--days 90]

Rows are generated inside PostgreSQL from one real snapshot (generate_series).
Times are measured in process through Django's test client (the server's
work: middleware, queries, figures, template), median of 20 requests.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    database = "ion_bench_pages"
    fresh_database(database)
    env = bench_env(database)
    os.environ.update(env)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from experiments.models import Experiment
    from experiments.services.analysis import analyse_experiment
    from rollout.services.evaluation import evaluate_rollout
    from tests.experiments.seeding import plant
    from tests.factories import feed, make_experiment, make_rollout

    started = time.perf_counter()
    rng = np.random.default_rng(3)
    for i in range(args.experiments):
        experiment = make_experiment(f"exp-{i:02d}", metrics=("session_duration",))
        Experiment.objects.filter(id=experiment.id).update(cuped_lookback_days=0)
        plant(
            experiment,
            experiment.metrics.get().metric,
            {"control": rng.normal(600, 100, 50), "treatment": rng.normal(620, 100, 50)},
            prefix=f"e{i}",
        )
        analyse_experiment(experiment=experiment)
    points = args.days * 288
    with connection.cursor() as cursor:
        # Copy each experiment's snapshot (and its rows) back in time every 5 minutes.
        cursor.execute(
            "INSERT INTO experiments_snapshot (experiment_id, computed_at, trigger, inputs_hash,"
            " units, carryover_excluded, srm, metrics, decision, service, watermark, duration_ms)"
            " SELECT s.experiment_id, s.computed_at - g * interval '5 minutes', 'schedule',"
            " s.inputs_hash, s.units, 0, s.srm, s.metrics, s.decision, s.service, '{}', 1"
            " FROM experiments_snapshot s, generate_series(1, %s) g",
            [points - 1],
        )
        cursor.execute(
            "INSERT INTO experiments_snapshotmetric (snapshot_id, experiment_id, computed_at,"
            " metric, variant, units, absolute_effect, relative_effect, ci_low, ci_high,"
            " sequential_ci_low, sequential_ci_high, p_value, sequential_p_value,"
            " p_value_adjusted, significant)"
            " SELECT s.id, s.experiment_id, s.computed_at, m.metric, m.variant, m.units,"
            " m.absolute_effect * (1 + random() * 0.2), m.relative_effect, m.ci_low, m.ci_high,"
            " m.sequential_ci_low, m.sequential_ci_high, m.p_value, m.sequential_p_value,"
            " m.p_value_adjusted, m.significant"
            " FROM experiments_snapshot s JOIN experiments_snapshotmetric m"
            " ON m.experiment_id = s.experiment_id WHERE s.trigger = 'schedule'",
        )
        cursor.execute("SELECT count(*) FROM experiments_snapshot")
        snapshots = cursor.fetchone()[0]
    rollout = make_rollout("bench-rollout", feature="bench", stage="canary")
    feed(rollout, "stable", 3000)
    feed(rollout, "canary", 3000)
    evaluate_rollout(rollout=rollout)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rollout_metricwindow (rollout_id, version, minute, requests, errors,"
            " unavailable, latency_sum_ms, histogram)"
            " SELECT w.rollout_id, w.version, w.minute - g * interval '1 minute', w.requests,"
            " w.errors, w.unavailable, w.latency_sum_ms, w.histogram"
            " FROM rollout_metricwindow w, generate_series(1, %s) g",
            [args.days * 1440],
        )
        cursor.execute(
            "INSERT INTO rollout_healthverdict (rollout_id, evaluated_at, verdict, action,"
            " global_incident, report) SELECT v.rollout_id, v.evaluated_at - g * interval"
            " '5 minutes', v.verdict, v.action, v.global_incident, v.report"
            " FROM rollout_healthverdict v, generate_series(1, %s) g",
            [points],
        )
        cursor.execute("VACUUM ANALYZE")
    generated = time.perf_counter() - started

    from django.core.cache import cache

    measured = Experiment.objects.get(key="exp-07")
    latest = measured.snapshots.first()

    def forget_series() -> None:
        cache.delete(f"experiments:series:{measured.id}:{latest.id}")

    user = User.objects.create_user("bench-pm")
    user.groups.add(Group.objects.get(name="Product managers"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    def timed(url: str, before=None) -> dict:
        client.get(url)
        times = []
        for _ in range(20):
            if before:
                before()
            t = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, url
        return {
            "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(sorted(times)[18], 1),
        }

    print(
        json.dumps(
            {
                "experiments": args.experiments,
                "snapshots": snapshots,
                "generation_s": round(generated, 1),
                "experiment_page_first_view_after_a_snapshot": timed(
            "/experiments/exp-07/", before=forget_series
        ),
        "experiment_page": timed("/experiments/exp-07/"),
                "experiment_list": timed("/experiments/"),
                "rollout_page": timed(f"/rollouts/{rollout.key}/"),
                "overview": timed("/"),
            },
            indent=2,
        )
    )
    _ = timezone


if __name__ == "__main__":
    main()
