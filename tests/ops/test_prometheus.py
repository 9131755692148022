"""A real Prometheus scraping a real web tier (gunicorn, two workers adding up
through PROMETHEUS_MULTIPROC_DIR) and a real worker with beat, on PostgreSQL
and Redis: after traffic with a known error share through a canary rollout,
PromQL gives the canary's error rate the rollout health API gives, and every
query of the shipped Grafana dashboard runs."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from tests.factories import make_rollout
from tests.integration.web import ROOT, Client, free_port
from tests.integration.worker import celery_worker, database_url_of_test_db, wait_for
from tests.ops.prometheus_server import prometheus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "ion-platform.json"
KEY = "prom-journey"
CANARY_SAMPLES, CANARY_ERRORS, STABLE_SAMPLES = 400, 20, 600


def gunicorn(env: dict[str, str], log_path: Path):
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--timeout", "30"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = Client("127.0.0.1", port)

    def answers():
        try:
            return client.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    assert wait_for(answers, timeout=60), log_path.read_text()[-3000:]
    return process, port, log


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_promql_matches_the_health_api_and_every_dashboard_query_runs(
    redis_url, postgres, integration_user, tmp_path
):
    make_rollout(
        KEY,
        stage="canary",
        rollback={"max_error_rate": 0.5, "max_p95_ms": 5000.0, "min_availability": 0.5},
    )
    token = Token.objects.get_or_create(user=integration_user)[0].key
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    web_metrics, worker_metrics = tmp_path / "web-metrics", tmp_path / "worker-metrics"
    web_metrics.mkdir()
    worker_metrics.mkdir()
    worker_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": prefix,
        "DATA_DIR": str(tmp_path),
        "DEBUG": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(web_metrics),
    }
    web, web_port, web_log = gunicorn(env, tmp_path / "web.log")
    try:
        with (
            celery_worker(
                redis_url=redis_url,
                data_dir=tmp_path,
                beat=True,
                extra_env={
                    "CACHE_KEY_PREFIX": prefix,
                    "PROMETHEUS_MULTIPROC_DIR": str(worker_metrics),
                    "WORKER_METRICS_PORT": str(worker_port),
                },
            ),
            prometheus(
                targets={"web": f"127.0.0.1:{web_port}", "worker": f"127.0.0.1:{worker_port}"},
                folder=tmp_path,
            ) as prom,
        ):
            api = Client("127.0.0.1", web_port, token=token)
            # Real routed requests of mentees through the v2 endpoint (the middleware
            # counts them), then samples of known outcome from a service outside.
            for i in range(100):
                status, body = api.request(
                    "POST", "/api/v2/recommendations/",
                    json.dumps({"user_id": f"mentee-{i}", "k": 3}).encode(),
                    {"Content-Type": "application/json"},
                )  # fmt: skip
                assert status == 200, body[:300]
            samples = [
                {
                    "version": "canary",
                    "latency_ms": 40.0,
                    "status": 500 if i < CANARY_ERRORS else 200,
                }
                for i in range(CANARY_SAMPLES)
            ] + [{"version": "stable", "latency_ms": 20.0, "status": 200}] * STABLE_SAMPLES
            for start in range(0, len(samples), 250):  # several requests: both workers take some
                answer = api.post_json(
                    f"/api/v1/rollouts/{KEY}/request-metrics/",
                    {"samples": samples[start : start + 250]},
                )
                assert answer["accepted"] == len(samples[start : start + 250]), answer
            sent = 100 + len(samples)

            health = {}

            def flushed():
                nonlocal health
                _, body = api.request("GET", f"/api/v1/rollouts/{KEY}/health/")
                health = json.loads(body)
                versions = health.get("versions", {})
                return sum(v.get("requests", 0) for v in versions.values()) == sent

            assert wait_for(flushed, timeout=30, interval=0.5), health
            canary = health["versions"]["canary"]
            assert canary["requests"] >= CANARY_SAMPLES
            error_rate = (
                f'sum(ion_rollout_request_errors_total{{rollout="{KEY}",version="canary"}})'
                f' / sum(ion_rollout_requests_total{{rollout="{KEY}",version="canary"}})'
            )
            total = f'sum(ion_rollout_requests_total{{rollout="{KEY}"}})'
            assert wait_for(lambda: prom.scalar(total) == sent, timeout=30, interval=0.5), (
                prom.scalar(total), sent,
            )  # fmt: skip
            assert prom.scalar(error_rate) == pytest.approx(canary["error_rate"], abs=1e-12)
            assert canary["error_rate"] == pytest.approx(CANARY_ERRORS / canary["requests"])
            assert prom.scalar(f'max(ion_rollout_canary_share_ratio{{rollout="{KEY}"}})') == 0.05

            # The worker's own exporter: beat's tasks ran there and were counted.
            runs = 'sum(ion_celery_task_runs_total{job="worker",task="rollout.flush_and_evaluate"})'
            assert wait_for(lambda: (prom.scalar(runs) or 0) > 0, timeout=30, interval=0.5)
            assert prom.scalar('min(up{job=~"web|worker"})') == 1

            # Every query of the dashboard runs; its template variables have values.
            for expr in dashboard_queries():
                concrete = (
                    expr.replace("$rollout", KEY)
                    .replace("$experiment", ".*")
                    .replace("$__rate_interval", "1m")
                )
                answer = prom.query(concrete)
                assert answer["status"] == "success", (expr, answer)
            rollouts = prom.api(
                "label/rollout/values", **{"match[]": "ion_rollout_canary_share_ratio"}
            )
            assert KEY in rollouts["data"], rollouts
            # The alert rules loaded and evaluate without error.
            groups = prom.api("rules")["data"]["groups"]
            assert {rule["name"] for g in groups for rule in g["rules"]} >= {
                "IonCanaryFailing", "IonBeatSilent", "IonServerErrors",
            }  # fmt: skip
            assert all(rule["health"] != "err" for g in groups for rule in g["rules"]), groups
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()
        web_log.close()
        print((tmp_path / "web.log").read_text()[-3000:])
