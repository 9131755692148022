import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django_celery_beat.models import PeriodicTask

from common.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_overview_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_people_log_in_with_a_session(client, pm_user):
    response = client.post("/accounts/login/", {"username": "pm", "password": "pw-for-tests"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_healthz_reports_each_component(client, db):
    # A beat that never ticked now degrades the whole (still 200): tick once.
    WorkerHeartbeat.objects.create(source=WorkerHeartbeat.Source.BEAT)
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    for part in ("database", "cache", "broker", "beat"):
        assert body["checks"][part]["status"] == "ok"


# The database down answers 503: tests/reliability/test_redis_outage.py (a real server
# process on an unreachable database).


def test_healthz_is_degraded_naming_a_dead_cache(client, db, settings):
    WorkerHeartbeat.objects.create(source=WorkerHeartbeat.Source.BEAT)
    settings.CACHES = {
        "default": {
            "BACKEND": "common.resilient_cache.ResilientRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    response = client.get("/healthz")
    body = response.json()
    # The platform serves from its in-process copies and the database: degraded, not down.
    assert response.status_code == 200
    assert body["status"] == "degraded"
    # A part is ok, degraded or down (it was "error" before /healthz said which).
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"


def test_healthz_is_degraded_naming_a_dead_broker(client, db):
    from config.celery import app

    WorkerHeartbeat.objects.create(source=WorkerHeartbeat.Source.BEAT)
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport_options = {"socket_connect_timeout": 0.5}
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["status"] == "down"  # was "error", as above
    assert body["checks"]["cache"]["status"] == "ok"


def test_metrics_speak_prometheus_text(client, db):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"ion_platform_info" in response.content


def test_api_docs_and_schema_are_served_without_a_cdn(client, db):
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200


def test_groups_and_beat_schedule_come_from_migrations(db):
    names = set(Group.objects.values_list("name", flat=True))
    assert {"Product managers", "Executives", "Integrations"} <= names
    heartbeat = PeriodicTask.objects.get(name="platform heartbeat")
    assert heartbeat.task == "common.record_heartbeat"
    assert heartbeat.enabled


def test_anonymous_api_requests_get_401(anon_api, db):
    response = anon_api.get("/api/v1/experiments/")
    assert response.status_code in (401, 404)


def _run_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    unset = {"DATABASE_URL", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_mode_refuses_to_start_without_secrets(tmp_path):
    result = _run_settings({"DEBUG": "0", "ALLOWED_HOSTS": "", "DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "ALLOWED_HOSTS" in result.stderr


def test_production_mode_passes_the_deploy_check(tmp_path):
    result = _run_settings(
        {
            "DEBUG": "0",
            "SECRET_KEY": "x" * 20 + "-production-like-secret-key-for-the-check-0123456789",
            "ALLOWED_HOSTS": "platform.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DATA_DIR": str(tmp_path),
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_malformed_boolean_stops_start_up(tmp_path):
    result = _run_settings({"DEBUG": "maybe", "DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


@pytest.mark.parametrize(
    "variable", ["DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"]
)
def test_every_variable_is_documented_in_env_example(variable):
    assert variable in (ROOT / ".env.example").read_text()


def test_demo_accounts_are_created_with_their_roles(db, django_user_model, capsys):
    from django.core.management import call_command

    call_command("create_demo_accounts", force=True)
    out = capsys.readouterr().out
    assert "exec-demo-pass" in out and "API token" in out
    assert django_user_model.objects.get(username="exec").groups.filter(name="Executives").exists()
    json.dumps(out)  # printable as is
