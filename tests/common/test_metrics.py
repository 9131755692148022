"""The metrics of common/metrics.py as /metrics serves them."""

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from common import metrics
from rollout import metrics_store
from rollout.histogram import bucket_index
from rollout.models import HealthVerdict
from rollout.prometheus_export import prometheus_bucket
from rollout.services.evaluation import evaluate_rollout
from rollout.services.lifecycle import rollback_rollout
from tests.factories import make_rollout


def scrape(client) -> dict[tuple[str, tuple], float]:
    metrics.DATABASE_FIGURES.forget()
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_batch_adds_to_the_histogram_exactly_as_one_observe_per_request():
    latencies = [0.001, 0.004, 0.07, 0.1, 0.1001, 0.2, 7.0, 12.0]
    reference = Histogram(
        "ref", "", buckets=metrics.LATENCY_BUCKETS_SECONDS, registry=CollectorRegistry()
    )
    for seconds in latencies:
        reference.observe(seconds)
    counts: dict[int, int] = {}
    for seconds in latencies:
        index = metrics.latency_bucket_of(seconds)
        counts[index] = counts.get(index, 0) + 1
    metrics.add_rollout_batch(
        rollout="pin",
        version="canary",
        requests=len(latencies),
        errors=0,
        latency_counts=counts,
        latency_sum_seconds=sum(latencies),
    )
    mine = metrics.ROLLOUT_LATENCY.labels("pin", "canary")

    def figures(histogram):
        return [(s.name, s.labels, s.value) for s in histogram._samples() if s.name != "_created"]

    assert figures(mine) == figures(reference)


@pytest.mark.parametrize("ms", [0.0, 1.0, 4.99, 5.0, 99.0, 100.0, 101.5, 199.0, 200.0, 5e4])
def test_a_store_bucket_lands_in_the_prometheus_bucket_of_its_reported_value(ms):
    from rollout.histogram import bucket_value

    reported = bucket_value(bucket_index(ms)) / 1000
    assert prometheus_bucket(bucket_index(ms)) == metrics.latency_bucket_of(reported)
    # The reported value is within 1 % of the latency: only latencies that close
    # to a bucket edge can change side.
    assert abs(reported - ms / 1000) <= 0.01 * ms / 1000 + 1e-12


@pytest.mark.django_db
def test_routed_requests_are_counted_from_the_stores_push(
    client, django_capture_on_commit_callbacks
):
    rollout = make_rollout("prom-counts", stage="canary")
    before = scrape(client)
    for i in range(200):
        metrics_store.record(rollout.id, "canary", 30.0, 500 if i % 10 == 0 else 200)
        metrics_store.record(rollout.id, "stable", 150.0, 200)
    # Counted once the rows are committed (the test runs inside a transaction).
    with django_capture_on_commit_callbacks(execute=True):
        metrics_store.push()
    after = scrape(client)

    def grown(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    canary = {"rollout": "prom-counts", "version": "canary"}
    stable = {"rollout": "prom-counts", "version": "stable"}
    assert grown("ion_rollout_requests_total", **canary) == 200
    assert grown("ion_rollout_request_errors_total", **canary) == 20
    assert grown("ion_rollout_request_errors_total", **stable) == 0
    assert grown("ion_rollout_request_duration_seconds_count", **stable) == 200
    assert grown("ion_rollout_request_duration_seconds_bucket", le="0.1", **stable) == 0
    assert grown("ion_rollout_request_duration_seconds_bucket", le="0.2", **stable) == 200
    assert grown("ion_rollout_request_duration_seconds_bucket", le="0.05", **canary) == 200
    assert grown("ion_rollout_request_duration_seconds_sum", **stable) == pytest.approx(30.0)


@pytest.mark.django_db
def test_share_verdict_thresholds_and_rollbacks_are_read_from_the_database(client):
    rollout = make_rollout("prom-db", stage="canary")
    for i in range(3000):
        metrics_store.record(rollout.id, "stable", 20.0, 200)
        metrics_store.record(rollout.id, "canary", 20.0, 500 if i % 10 == 0 else 200)
    metrics_store.flush_to_database()  # pushes; on Redis also copies into the windows
    samples = scrape(client)
    assert value(samples, "ion_rollout_canary_share_ratio", rollout="prom-db") == 0.05
    assert value(samples, "ion_rollout_state", rollout="prom-db", state="active") == 1
    assert value(samples, "ion_rollout_sla_max_p95_seconds", rollout="prom-db") == 0.1
    assert value(samples, "ion_rollout_rollback_max_error_ratio", rollout="prom-db") == 0.01

    verdict = evaluate_rollout(rollout=rollout)  # 10 % canary errors: rolled back by itself
    assert verdict.verdict == HealthVerdict.Verdict.FAILING
    samples = scrape(client)
    assert value(samples, "ion_rollout_health_verdict", rollout="prom-db", verdict="failing") == 1
    assert value(samples, "ion_rollout_health_verdict", rollout="prom-db", verdict="healthy") == 0
    rollbacks = "ion_rollout_rollbacks_total"
    assert value(samples, rollbacks, rollout="prom-db", trigger="automatic") == 1
    assert value(samples, rollbacks, rollout="prom-db", trigger="manual") == 0
    assert value(samples, "ion_rollout_canary_share_ratio", rollout="prom-db") == 0
    assert value(samples, "ion_rollout_state", rollout="prom-db", state="rolled_back") == 1
    # A second rollback is refused and counts nothing.
    assert rollback_rollout(rollout=rollout, reason="again") is False
    assert value(scrape(client), rollbacks, rollout="prom-db", trigger="automatic") == 1


@pytest.mark.django_db
def test_beat_age_is_infinite_before_the_first_tick_and_small_after(client):
    from common.tasks import record_heartbeat

    assert value(scrape(client), "ion_beat_last_tick_age_seconds") == float("inf")
    runs = metrics.TASK_RUNS.labels("common.record_heartbeat")._value.get()
    record_heartbeat.apply()
    samples = scrape(client)
    assert 0 <= value(samples, "ion_beat_last_tick_age_seconds") < 5
    assert value(samples, "ion_celery_task_runs_total", task="common.record_heartbeat") == runs + 1


@pytest.mark.django_db
def test_ingested_events_are_counted_by_result(client, integration_api):
    from experiments.models import Metric

    Metric.objects.get_or_create(key="adoption", defaults={"name": "Adoption", "kind": "binomial"})
    before = scrape(client)
    events = [
        {"event_id": "e1", "unit_id": "u1", "metric": "adoption"},
        {"event_id": "e1", "unit_id": "u1", "metric": "adoption"},
        {"event_id": "e2", "unit_id": "u2", "metric": "no-such-metric"},
    ]
    response = integration_api.post("/api/v1/events/", {"events": events}, format="json")
    assert response.status_code == 200, response.content
    after = scrape(client)
    for result, expected in (("accepted", 1), ("duplicate", 1), ("rejected", 1)):
        grown = value(after, "ion_events_ingested_total", result=result) - value(
            before, "ion_events_ingested_total", result=result
        )
        assert grown == expected, result


@pytest.mark.django_db
def test_a_scrape_answers_when_the_database_figures_fail(client, monkeypatch):
    def broken(figures):
        raise RuntimeError("database away")

    monkeypatch.setattr(metrics, "_sources", [*metrics._sources, broken])
    samples = scrape(client)
    assert value(samples, "ion_database_figures_ok") == 0
    assert value(samples, "ion_platform_info", version=metrics.VERSION) == 1
