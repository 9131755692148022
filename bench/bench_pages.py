"""Server time of the experiment and rollout pages with 50 experiments, each
with 90 days of 5-minute snapshots, and a rollout with 90 days of minute
windows, on PostgreSQL; and the browser load of an experiment with 10 metrics.

    .venv/bin/python bench/bench_pages.py [--experiments 50] [--days 90] [--browser]

Rows are generated inside PostgreSQL from one real snapshot (generate_series).
Times are measured in process through Django's test client (the server's
work: middleware, queries, figures, template), median of 20 requests.

With --browser the page of the 10-metric experiment is also loaded in
chromium from gunicorn (2 workers): time from navigation start to the first
chart drawn, to the load event, and to every chart of the page drawn
(scrolled through), median of 10 loads in a fresh browser context each
(nothing cached) and of 10 reloads in one context (the static files cached).
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
    parser.add_argument("--database", default="ion_bench_pages")
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()
    database = args.database
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
    wide = ten_metric_experiment(rng)
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

    measured = Experiment.objects.get(key=f"exp-{min(7, args.experiments - 1):02d}")
    latest = measured.snapshots.first()

    def forget_series() -> None:
        cache.delete(f"experiments:series:{measured.id}:{latest.id}")

    user = User.objects.create_user("bench-pm", password=BENCH_PASSWORD)
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
                    f"/experiments/{measured.key}/", before=forget_series
                ),
                "experiment_page": timed(f"/experiments/{measured.key}/"),
                "experiment_page_10_metrics": timed(f"/experiments/{wide.key}/"),
                "experiment_list": timed("/experiments/"),
                "rollout_page": timed(f"/rollouts/{rollout.key}/"),
                "overview": timed("/"),
            },
            indent=2,
        )
    )
    _ = timezone
    if args.browser:
        print(json.dumps({"browser_10_metrics": browser_load(env, f"/experiments/{wide.key}/")}))


BENCH_PASSWORD = "bench-pm-pass-0123"
TEN_METRICS = [(f"conv_{i}", "binomial") for i in range(5)] + [
    (f"value_{i}", "mean") for i in range(5)
]


def ten_metric_experiment(rng):
    import numpy as np

    """An experiment with 10 metrics (5 binomial, 5 mean), 400 units an arm."""
    from experiments.models import Experiment
    from experiments.services.analysis import analyse_experiment
    from tests.factories import make_experiment, make_metric

    for key, kind in TEN_METRICS:
        make_metric(key, kind=kind)
    experiment = make_experiment("exp-10m", metrics=tuple(key for key, _ in TEN_METRICS))
    Experiment.objects.filter(id=experiment.id).update(cuped_lookback_days=0)
    links = {link.metric.key: link.metric for link in experiment.metrics.select_related("metric")}
    for i, (key, kind) in enumerate(TEN_METRICS):
        if kind == "binomial":
            values = {
                "control": np.where(rng.random(400) < 0.3, 1.0, np.nan),
                "treatment": np.where(rng.random(400) < 0.33, 1.0, np.nan),
            }
        else:
            values = {"control": rng.normal(60, 10, 400), "treatment": rng.normal(61, 10, 400)}
        # Exposures are planted with the first metric only; the others add events.
        plant_events(experiment, links[key], values, first=i == 0)
    analyse_experiment(experiment=experiment)
    return experiment


def plant_events(experiment, metric, values, *, first: bool) -> None:
    from datetime import timedelta

    import numpy as np
    from django.utils import timezone

    from experiments.models import Event
    from tests.experiments.seeding import plant

    if first:
        plant(experiment, metric, values, prefix="w")
        return
    start = timezone.now() - timedelta(days=3)
    Event.objects.bulk_create(
        Event(
            event_id=f"w-{metric.key}-{arm}-{i}",
            unit_id=f"w-{arm}-{i}",
            metric=metric,
            value=float(value),
            timestamp=start + timedelta(seconds=i, hours=1),
            received_at=start,
        )
        for arm, arm_values in values.items()
        for i, value in enumerate(arm_values)
        if not np.isnan(value)
    )


# Records, from the first frame on, when the first chart and every chart of
# the page have something drawn (an <svg> inside a .chart, or an svg.chart).
CHART_PROBE = """
(() => {
  const charts = () => Array.from(document.querySelectorAll('.chart'));
  const drawn = (el) => el.matches('svg') || el.querySelector('svg') !== null;
  function tick() {
    const all = charts();
    if (all.length && window.__firstChart === undefined && all.some(drawn)) {
      window.__firstChart = performance.now();
    }
    if (all.length && window.__allCharts === undefined && all.every(drawn)) {
      window.__allCharts = performance.now();
    }
    if (window.__allCharts === undefined) requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""


def browser_load(env: dict, path: str) -> dict:
    from playwright.sync_api import sync_playwright

    from bench.httpbench import gunicorn

    def one(page, url: str) -> dict:
        page.goto(url, wait_until="load")
        # Scroll through the page so that charts drawn on sight are drawn too.
        page.evaluate(
            "async () => { for (let y = 0; y < document.body.scrollHeight; y += 600) {"
            " window.scrollTo(0, y); await new Promise(r => setTimeout(r, 30)); } }"
        )
        page.wait_for_function("window.__allCharts !== undefined", timeout=60_000)
        return page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return {first_chart: window.__firstChart, all_charts: window.__allCharts,"
            " load: n.loadEventEnd, response_end: n.responseEnd,"
            " bytes: performance.getEntriesByType('resource')"
            ".reduce((s, r) => s + (r.transferSize || 0), n.transferSize || 0)}; }"
        )

    def median(runs: list[dict]) -> dict:
        return {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}

    with gunicorn(env, workers=2, port=8767) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        login = browser.new_context()
        page = login.new_page()
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", "bench-pm")
        page.fill("#id_password", BENCH_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        state = login.storage_state()
        login.close()
        cold, warm = [], []
        for _ in range(10):
            context = browser.new_context(
                storage_state=state, viewport={"width": 1440, "height": 900}
            )
            context.add_init_script(CHART_PROBE)
            page = context.new_page()
            cold.append(one(page, base + path))
            warm.append(one(page, base + path))
            context.close()
        browser.close()
    return {"fresh_context_ms": median(cold), "cached_static_ms": median(warm)}


if __name__ == "__main__":
    main()
