"""Per-version request metrics: the middleware, the store and the flush."""

import pytest
from django.http import JsonResponse
from django.test import Client, override_settings
from django.urls import path

from rollout import metrics_store
from rollout.middleware import route_request
from rollout.models import MetricWindow
from tests.factories import make_rollout

pytestmark = pytest.mark.django_db


def routed_ok(request):
    route_request(request, "recommendations", request.GET.get("unit", "u"), is_staff=True)
    return JsonResponse({"ok": True})


def routed_boom(request):
    route_request(request, "recommendations", "u", is_staff=True)
    raise RuntimeError("the new engine crashed")


def routed_503(request):
    route_request(request, "recommendations", "u", is_staff=True)
    return JsonResponse({"detail": "down"}, status=503)


def not_routed(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("ok/", routed_ok),
    path("boom/", routed_boom),
    path("unavailable/", routed_503),
    path("plain/", not_routed),
]


def windows(rollout, version):
    metrics_store.push()
    metrics_store.flush_to_database()
    return list(MetricWindow.objects.filter(rollout=rollout, version=version))


@override_settings(ROOT_URLCONF=__name__)
def test_routed_requests_are_counted_per_version_with_errors_and_latency():
    rollout = make_rollout()  # internal stage: staff get the canary
    client = Client(raise_request_exception=False)
    for _ in range(5):
        assert client.get("/ok/").status_code == 200
    assert client.get("/boom/").status_code == 500
    assert client.get("/unavailable/").status_code == 503
    client.get("/plain/")
    tally = metrics_store.tally_of(windows(rollout, "canary"))
    assert (tally.requests, tally.errors, tally.unavailable) == (7, 2, 1)
    assert tally.p50_ms is not None and tally.p50_ms > 0
    assert windows(rollout, "stable") == []


def test_flushing_twice_never_double_counts(settings):
    rollout = make_rollout()
    for _ in range(10):
        metrics_store.record(rollout.id, "stable", 12.0, 200)
    first = metrics_store.tally_of(windows(rollout, "stable"))
    second = metrics_store.tally_of(windows(rollout, "stable"))
    assert first.requests == second.requests == 10
    for _ in range(5):
        metrics_store.record(rollout.id, "stable", 12.0, 200)
    assert metrics_store.tally_of(windows(rollout, "stable")).requests == 15


def test_each_push_adds_this_process_increments_to_one_row_per_minute():
    rollout = make_rollout()
    at = 1_700_000_000.0  # one minute for every sample
    for i in range(500):
        metrics_store.record(rollout.id, "canary", 10.0, 500 if i < 5 else 200, at=at)
    assert not MetricWindow.objects.exists()  # nothing per request
    assert metrics_store.push() == 1
    metrics_store.record(rollout.id, "canary", 30.0, 200, at=at + 1)  # as another process would
    metrics_store.push()
    assert metrics_store.push() == 0  # nothing left to write
    (window,) = MetricWindow.objects.filter(rollout=rollout, version="canary")
    assert (window.requests, window.errors) == (501, 5)
    assert metrics_store.tally_of([window]).histogram.count == 501


def test_a_push_the_database_refuses_is_kept_in_process_and_stored_once_later(postgres):
    import psycopg
    from django.db import OperationalError, connection

    from tests.integration.worker import database_url_of_test_db

    rollout = make_rollout()
    for _ in range(7):
        metrics_store.record(rollout.id, "stable", 12.0, 200)
    # Another session holds the table: this one's push gives up after 200 ms.
    with psycopg.connect(database_url_of_test_db()) as other:
        other.execute("LOCK TABLE rollout_metricwindow IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            with pytest.raises(OperationalError):
                metrics_store.push()
            metrics_store.maybe_push()  # the middleware's call: logs, never raises
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
        other.rollback()
    metrics_store.record(rollout.id, "stable", 12.0, 200)
    metrics_store.push()
    assert metrics_store.tally_of(windows(rollout, "stable")).requests == 8


def test_request_metrics_from_outside_services_validate_each_sample(integration_api):
    rollout = make_rollout()
    response = integration_api.post(
        f"/api/v1/rollouts/{rollout.key}/request-metrics/",
        {
            "samples": [
                {"version": "canary", "latency_ms": 35, "status": 200},
                {"version": "canary", "latency_ms": 40, "status": 502},
                {"version": "purple", "latency_ms": 40, "status": 200},
                {"version": "stable", "latency_ms": -1, "status": 200},
                {"version": "stable", "latency_ms": 5, "status": 999},
                {
                    "version": "stable",
                    "latency_ms": 5,
                    "status": 200,
                    "timestamp": "2020-01-01T00:00:00Z",
                },
                {"version": "stable", "latency_ms": None, "status": 0},
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["accepted"] == 3
    assert [r["index"] for r in body["rejected"]] == [2, 3, 4, 5]
    assert "hour old" in body["rejected"][3]["errors"]["timestamp"][0]
    canary = metrics_store.tally_of(windows(rollout, "canary"))
    assert (canary.requests, canary.errors, canary.unavailable) == (2, 1, 1)
    stable = metrics_store.tally_of(windows(rollout, "stable"))
    assert (stable.requests, stable.unavailable) == (1, 1)


def test_request_metrics_need_the_permission(pm_api, anon_api):
    rollout = make_rollout()
    body = {"samples": [{"version": "canary", "latency_ms": 1, "status": 200}]}
    url = f"/api/v1/rollouts/{rollout.key}/request-metrics/"
    assert pm_api.post(url, body, format="json").status_code == 403
    assert anon_api.post(url, body, format="json").status_code == 401
