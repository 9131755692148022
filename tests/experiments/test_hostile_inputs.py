"""A hostile client: every input that once answered 500, or was stored and broke
something later, now gets a 400/413 (or a per-item rejection with the good items
stored), and nothing bad is stored. On PostgreSQL these inputs are the ones that
failed; on SQLite they pass through the same boundary (common.validation)."""

import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from common import validation
from experiments import tasks
from experiments.models import Event, Experiment, Exposure, Snapshot, Variant
from rollout.models import Rollout
from tests.conftest import token_client
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
YEAR_ONE = "0001-01-01T00:00:00+14:00"  # year 0 in UTC: unreadable once stored


def post_json(api, path, raw):
    """Post a body as written (NaN and 1e400 cannot come from json.dumps)."""
    if not isinstance(raw, str | bytes):
        raw = json.dumps(raw)
    return api.post(path, raw, content_type="application/json")


def nested(depth, leaf=1):
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def good_event(event_id="good"):
    return {"event_id": event_id, "unit_id": "u1", "metric": "adoption"}


def events_answer(api, *bad_items):
    """Post the bad items after one good one; the good one must be stored."""
    response = post_json(api, "/api/v1/events/", {"events": [good_event(), *bad_items]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == list(range(1, len(bad_items) + 1))
    assert list(Event.objects.values_list("event_id", flat=True)) == ["good"]
    return {r["index"]: r["errors"] for r in body["rejected"]}


# --- events ----------------------------------------------------------------------------


def test_a_nul_byte_in_unit_id_or_event_id_rejects_only_that_event(integration_api):
    make_metric("adoption")
    rejected = events_answer(
        integration_api,
        {"event_id": "e1", "unit_id": NUL, "metric": "adoption"},
        {"event_id": NUL, "unit_id": "u1", "metric": "adoption"},
        {"event_id": "e3", "unit_id": "u1", "metric": NUL},
    )
    assert rejected[1] == {"unit_id": ["Null characters are not allowed."]}
    assert rejected[2] == {"event_id": ["Null characters are not allowed."]}
    assert rejected[3] == {"metric": ["Null characters are not allowed."]}


def test_a_lone_surrogate_in_unit_id_rejects_only_that_event(integration_api):
    make_metric("adoption")
    raw = json.dumps({"events": [good_event(), {"unit_id": "\ud800", "metric": "adoption"}]})
    body = post_json(integration_api, "/api/v1/events/", raw).json()
    assert body["accepted"] == 1
    assert "Surrogate" in body["rejected"][0]["errors"]["unit_id"][0]
    assert Event.objects.count() == 1


@pytest.mark.parametrize("value", ["1.7e308", "-1.7e308", "1e16", "1" + "0" * 400, "1e400"])
def test_an_event_value_out_of_range_rejects_only_that_event(integration_api, value):
    make_metric("adoption")
    raw = (
        '{"events": [{"event_id": "good", "unit_id": "u1", "metric": "adoption"},'
        f' {{"event_id": "big", "unit_id": "u1", "metric": "adoption", "value": {value}}}]}}'
    )
    response = post_json(integration_api, "/api/v1/events/", raw)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert "value" in body["rejected"][0]["errors"]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["good"]


def test_the_largest_allowed_value_is_stored(integration_api):
    make_metric("adoption")
    body = post_json(
        integration_api,
        "/api/v1/events/",
        {"events": [{**good_event(), "value": validation.MAX_ABS_VALUE}]},
    ).json()
    assert body["accepted"] == 1
    assert Event.objects.get().value == 1e15


@pytest.mark.parametrize(
    "timestamp",
    [YEAR_ONE, "1999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:00", -1e12, 1e20],
)
def test_an_event_timestamp_out_of_range_rejects_only_that_event(integration_api, timestamp):
    make_metric("adoption")
    rejected = events_answer(
        integration_api,
        {"event_id": "bad", "unit_id": "u1", "metric": "adoption", "timestamp": timestamp},
    )
    assert rejected[1]["timestamp"][0].startswith("Timestamp ")


# --- exposures -------------------------------------------------------------------------


def exposures_answer(api, *bad_items, raw_items=None):
    good = {"experiment": "rec-v2", "unit_id": "good", "variant": "control"}
    if raw_items is not None:
        raw = '{"exposures": [' + json.dumps(good) + ", " + raw_items + "]}"
    else:
        raw = {"exposures": [good, *bad_items]}
    response = post_json(api, "/api/v1/exposures/", raw)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    assert list(Exposure.objects.values_list("unit_id", flat=True)) == ["good"]
    return {r["index"]: r["errors"] for r in body["rejected"]}


def test_a_nul_byte_in_an_exposure_rejects_only_that_exposure(integration_api):
    make_experiment("rec-v2")
    rejected = exposures_answer(
        integration_api,
        {"experiment": "rec-v2", "unit_id": NUL, "variant": "control"},
        {"experiment": "rec-v2", "unit_id": "u2", "variant": "control", "attributes": {"k": NUL}},
        {"experiment": "rec-v2", "unit_id": "u3", "variant": "control", "attributes": {NUL: 1}},
    )
    assert sorted(rejected) == [1, 2, 3]
    assert rejected[1] == {"unit_id": ["Null characters are not allowed."]}
    assert "Null characters" in rejected[2]["attributes"][0]
    assert "Null characters" in rejected[3]["attributes"][0]


def test_an_experiment_key_that_cannot_exist_is_refused_before_any_lookup(integration_api):
    make_experiment("rec-v2")
    rejected = exposures_answer(
        integration_api, {"experiment": "rec v2\U000e5a6a", "unit_id": "u2", "variant": "control"}
    )
    assert rejected[1] == {"experiment": ["Must be a key: letters, digits, '-' or '_'."]}
    response = post_json(
        integration_api, "/api/v1/assignments/", {"experiment": "rec v2", "unit_id": "u1"}
    )
    assert response.status_code == 400
    assert "Must be a key" in response.json()["experiment"][0]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_a_non_finite_number_in_exposure_attributes_rejects_only_that_exposure(
    integration_api, number
):
    make_experiment("rec-v2")
    rejected = exposures_answer(
        integration_api,
        raw_items='{"experiment": "rec-v2", "unit_id": "u2", "variant": "control",'
        f' "attributes": {{"score": {number}}}}}',
    )
    assert "finite" in rejected[1]["attributes"][0]


def test_exposure_attributes_deeper_than_20_levels_reject_only_that_exposure(integration_api):
    make_experiment("rec-v2")
    rejected = exposures_answer(
        integration_api,
        {"experiment": "rec-v2", "unit_id": "u2", "variant": "control", "attributes": nested(21)},
    )
    assert "at most 20 levels" in rejected[1]["attributes"][0]


def test_exposure_attributes_of_20_levels_are_stored(integration_api):
    make_experiment("rec-v2")
    item = {"experiment": "rec-v2", "unit_id": "u2", "variant": "control", "attributes": nested(20)}
    assert (
        post_json(integration_api, "/api/v1/exposures/", {"exposures": [item]}).json()["accepted"]
        == 1
    )
    assert Exposure.objects.get().attributes == nested(20)


def test_an_exposure_in_year_one_is_refused_and_the_admin_keeps_working(
    integration_api, client, django_user_model
):
    make_experiment("rec-v2")
    rejected = exposures_answer(
        integration_api,
        {"experiment": "rec-v2", "unit_id": "u2", "variant": "control", "timestamp": YEAR_ONE},
    )
    assert "out of range" in rejected[1]["timestamp"][0] or "before" in rejected[1]["timestamp"][0]
    admin = django_user_model.objects.create_superuser("root", "root@example.invalid", "pw")
    client.force_login(admin)
    assert client.get("/admin/experiments/exposure/").status_code == 200


# --- assignments -----------------------------------------------------------------------


def test_a_nul_byte_in_an_assignment_is_400_and_records_no_exposure(integration_api):
    make_experiment("rec-v2")
    for body in (
        {"experiment": "rec-v2", "unit_id": NUL},
        {"experiment": NUL, "unit_id": "u1"},
        {"experiment": "rec-v2", "unit_id": "u1", "attributes": {"k": NUL}},
    ):
        response = post_json(integration_api, "/api/v1/assignments/", body)
        assert response.status_code == 400, response.content
        assert "Null characters" in json.dumps(response.json())
    assert not Exposure.objects.exists()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e400", "1" + "0" * 400])
def test_a_non_finite_number_in_assignment_attributes_is_400(integration_api, number):
    make_experiment("rec-v2")
    raw = f'{{"experiment": "rec-v2", "unit_id": "u1", "attributes": {{"x": {number}}}}}'
    response = post_json(integration_api, "/api/v1/assignments/", raw)
    assert response.status_code == 400, response.content
    assert not Exposure.objects.exists()


def test_assignment_attributes_deeper_than_20_levels_are_400(integration_api):
    make_experiment("rec-v2")
    body = {"experiment": "rec-v2", "unit_id": "u1", "attributes": nested(21)}
    response = post_json(integration_api, "/api/v1/assignments/", body)
    assert response.status_code == 400
    assert "at most 20 levels" in response.json()["attributes"][0]
    assert not Exposure.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"experiment": "rec-v2", "unit_ids": ["u1", NUL]}),
        '{"experiment": "rec-v2", "unit_ids": ["u1"], "attributes": {"x": NaN}}',
        '{"experiment": "rec-v2", "unit_ids": ["u1"], "attributes": {"x": 1e400}}',
    ],
)
def test_a_bad_batch_assignment_is_400_and_records_nothing(integration_api, raw):
    make_experiment("rec-v2")
    response = post_json(integration_api, "/api/v1/assignments/batch/", raw)
    assert response.status_code == 400, response.content
    assert response.json()
    assert not Exposure.objects.exists()


# --- deep JSON on every JSON endpoint ---------------------------------------------------

JSON_ENDPOINTS = [
    "/api/v1/events/",
    "/api/v1/exposures/",
    "/api/v1/assignments/",
    "/api/v1/assignments/batch/",
    "/api/v1/metrics/",
    "/api/v1/experiments/",
    "/api/v1/rollouts/",
    "/api/v1/rollouts/rec-rollout/request-metrics/",
    "/api/v2/recommendations/",
    "/api/v2/conversations/",
]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("depth", [65, 10_000, 100_000])
def test_a_deeply_nested_body_is_400_json_on_every_json_endpoint(superuser_api, path, depth):
    from tests.factories import make_rollout

    make_rollout("rec-rollout")
    raw = "[" * depth + "]" * depth
    response = post_json(superuser_api, path, raw)
    assert response.status_code == 400, (path, response.status_code, response.content[:200])
    assert "nested more than 64 levels" in response.json()["detail"]


@pytest.fixture
def superuser_api(db, django_user_model):
    return token_client(
        django_user_model.objects.create_superuser("root", "root@example.invalid", "pw")
    )


# --- experiments: weights, payloads ----------------------------------------------------


def experiment_body(**variant_extra):
    return {
        "key": "exp",
        "name": "Exp",
        "variants": [
            {"key": "control", "is_control": True, **variant_extra},
            {"key": "treatment", **variant_extra},
        ],
    }


@pytest.mark.parametrize("weight", [1e308, 0, -1, 1e6 + 1])
def test_a_variant_weight_out_of_range_is_400_and_stores_nothing(pm_api, weight):
    response = pm_api.post("/api/v1/experiments/", experiment_body(weight=weight), format="json")
    assert response.status_code == 400, response.content
    assert "at most 1e+06" in json.dumps(response.json())
    assert not Experiment.objects.exists()


@pytest.mark.parametrize(
    "payload", ['{"x": NaN}', '{"x": Infinity}', '{"x": 1e400}', '"a\\u0000b"']
)
def test_a_variant_payload_that_cannot_be_stored_is_400(pm_api, payload):
    raw = json.dumps(experiment_body()).replace(
        '"is_control": true}', '"is_control": true, "payload": PAYLOAD}'
    )
    response = post_json(pm_api, "/api/v1/experiments/", raw.replace("PAYLOAD", payload))
    assert response.status_code == 400, response.content
    assert not Experiment.objects.exists()


def test_a_variant_payload_deeper_than_20_levels_is_400(pm_api):
    response = pm_api.post(
        "/api/v1/experiments/", experiment_body(payload=nested(21)), format="json"
    )
    assert response.status_code == 400
    assert "at most 20 levels" in json.dumps(response.json())
    assert not Experiment.objects.exists()


def test_the_service_refuses_the_weights_too(db):
    from common.errors import DomainError
    from experiments.services import lifecycle

    with pytest.raises(DomainError, match="weight"):
        lifecycle.create_experiment(
            key="exp",
            name="exp",
            variants=[
                lifecycle.VariantSpec(key="a", weight=1e308, is_control=True),
                lifecycle.VariantSpec(key="b", weight=1e308),
            ],
        )
    assert not Experiment.objects.exists()


def test_weights_stored_before_the_bound_still_give_a_valid_sdk_config_and_srm(pm_api):
    experiment = make_experiment("legacy")
    Variant.objects.filter(experiment=experiment).update(weight=1e308)
    from experiments import config_cache

    config_cache.invalidate("legacy")
    config_cache.clear_local()
    sdk = pm_api.get("/api/v1/experiments/legacy/sdk-config/").json()
    assert sdk["weights"] == [0.5, 0.5]
    for i in range(4):
        post_json(pm_api, "/api/v1/assignments/", {"experiment": "legacy", "unit_id": f"u{i}"})
    analysed = pm_api.post("/api/v1/experiments/legacy/analysis/")
    assert analysed.status_code == 201, analysed.content
    assert analysed.json()["srm"]["p_value"] is not None


# --- analysis meets bad rows stored before the bounds ------------------------------------


def plant_overflowing_events(experiment):
    """Two events of 1.7e308 for one exposed unit, written past the service as
    rows of an older version were: their sum (and square) overflows a double."""
    metric = make_metric("session_duration", kind="mean")
    experiment.metrics.create(metric=metric, role="secondary")
    control = experiment.variants.get(key="control")
    at = timezone.now() - timedelta(hours=1)
    Exposure.objects.create(experiment=experiment, unit_id="u1", variant=control, exposed_at=at)
    Event.objects.bulk_create(
        Event(
            event_id=f"huge-{i}",
            unit_id="u1",
            metric=metric,
            value=1.7e308,
            timestamp=at + timedelta(minutes=1),
            received_at=at,
        )
        for i in range(2)
    )


def test_an_analysis_that_meets_overflowing_rows_answers_409_not_500(pm_api):
    experiment = make_experiment("broken")
    plant_overflowing_events(experiment)
    response = pm_api.post("/api/v1/experiments/broken/analysis/")
    assert response.status_code == 409, response.content
    assert "session_duration" in response.json()["detail"]
    assert not Snapshot.objects.exists()
    assert pm_api.get("/api/v1/experiments/broken/results/").status_code == 404
    segments = pm_api.get("/api/v1/experiments/broken/segments/?attribute=platform")
    assert segments.status_code == 409


def test_the_periodic_analysis_logs_a_broken_experiment_and_analyses_the_others(caplog):
    broken = make_experiment("broken")
    plant_overflowing_events(broken)
    healthy = make_experiment("healthy")
    assert tasks.analyse_experiment(broken.id) is None
    assert "not analysed" in caplog.text
    assert tasks.analyse_experiment(healthy.id) is not None
    assert Snapshot.objects.filter(experiment=healthy).count() == 1
    assert not Snapshot.objects.filter(experiment=broken).exists()


def test_the_fan_out_goes_on_after_a_broken_experiment_in_eager_mode(monkeypatch):
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    broken = make_experiment("broken")
    plant_overflowing_events(broken)
    healthy = make_experiment("healthy")
    assert tasks.analyse_running_experiments() == 2
    assert Snapshot.objects.filter(experiment=healthy).count() == 1


# --- query parameters and path segments --------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/experiments/?status=a%00b",
        "/api/v1/experiments/?status=bogus",
        "/api/v1/experiments/rec-v2/segments/?attribute=a%00b",
        "/api/v1/experiments/rec-v2/segments/?attribute=" + "x" * 65,
        "/api/v1/rollouts/rec-rollout/metrics/?since=9999-12-31T23:59:59-23:00",
        "/api/v1/rollouts/rec-rollout/metrics/?since=" + YEAR_ONE.replace("+", "%2B"),
        "/api/v1/rollouts/rec-rollout/metrics/?since=a%00b",
        "/api/v2/users/a%00b/memory/",
        "/api/v2/items/?q=a%00b",
    ],
)
def test_a_bad_query_parameter_or_path_segment_is_400(superuser_api, path):
    make_experiment("rec-v2")
    from tests.factories import make_rollout

    make_rollout("rec-rollout")
    response = superuser_api.get(path)
    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    assert response.json()


def test_deleting_the_memory_of_a_user_id_with_a_nul_byte_is_400(integration_api):
    assert integration_api.delete("/api/v2/users/a%00b/memory/").status_code == 400


def test_a_nul_byte_in_the_segment_of_the_experiment_page_is_a_message(pm_user, client):
    make_experiment("rec-v2")
    client.force_login(pm_user)
    page = client.get("/experiments/rec-v2/?segment=a%00b")
    assert page.status_code == 200
    assert "Null characters are not allowed." in page.content.decode()


def test_a_nul_byte_in_the_audit_filters_is_a_message_or_400(pm_user, client):
    client.force_login(pm_user)
    assert "Null characters" in client.get("/audit/?actor=p%00m").content.decode()
    assert client.get("/audit/?actor=p%00m&format=csv").status_code == 400
    assert client.get("/audit/?object_key=a%00b").status_code == 200


def test_min_requests_beyond_a_32_bit_column_is_400_and_stores_nothing(pm_api):
    response = pm_api.post(
        "/api/v1/rollouts/",
        {"key": "r", "name": "R", "min_requests": 2_147_483_648},
        format="json",
    )
    assert response.status_code == 400
    assert "min_requests" in response.json()
    assert not Rollout.objects.exists()


# --- sizes -----------------------------------------------------------------------------


def test_the_contracts_largest_batch_is_accepted(integration_api):
    """10 000 events with event and unit ids of 200 characters, as long as the
    contract allows: ≈ 5.1 MB."""
    make_metric("adoption")
    events = [
        {
            "event_id": f"{i:0200d}",
            "unit_id": f"{i:0200d}",
            "metric": "adoption",
            "value": 1.5,
            "timestamp": "2026-11-01T10:00:00Z",
        }
        for i in range(10_000)
    ]
    raw = json.dumps({"events": events})
    assert len(raw) > 2.5 * 2**20  # over Django's default limit
    response = post_json(integration_api, "/api/v1/events/", raw)
    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"accepted": 10_000, "duplicates": 0, "rejected": []}
    assert Event.objects.count() == 10_000
    assert set(Event.objects.values_list("event_id", flat=True)) == {e["event_id"] for e in events}


@pytest.mark.parametrize(
    "path", ["/api/v1/events/", "/api/v1/assignments/", "/api/v2/recommendations/"]
)
def test_a_body_over_the_limit_is_a_json_413_naming_it(integration_api, path):
    make_metric("adoption")
    make_experiment("rec-v2")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    filler = "x" * 100
    count = limit // 100
    raw = json.dumps({"events": [{"unit_id": filler, "metric": "adoption"}] * count})
    assert len(raw) > limit
    response = post_json(integration_api, path, raw)
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["limit_bytes"] == limit
    assert str(limit) in response.json()["detail"]
    assert not Event.objects.exists()
    assert not Exposure.objects.exists()


# --- concurrency ---------------------------------------------------------------------


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlock_is_retried_inside_the_service_and_each_event_stored_once(monkeypatch):
    from django.db import OperationalError

    from experiments.services import ingestion

    make_metric("adoption")
    real, attempts = ingestion._store_events, []

    def deadlocked_once(rows, *, received_at):
        attempts.append(len(rows))
        if len(attempts) == 1:
            real(rows, received_at=received_at)  # written, then rolled back below
            raise OperationalError("deadlock detected") from _Deadlock()
        return real(rows, received_at=received_at)

    def atomic_attempt(rows, *, received_at):
        from django.db import transaction

        with transaction.atomic():
            return deadlocked_once(rows, received_at=received_at)

    monkeypatch.setattr(ingestion, "_store_events", atomic_attempt)
    monkeypatch.setattr(ingestion.time, "sleep", lambda seconds: None)
    result = ingestion.ingest_events([good_event("a"), good_event("b"), good_event("a")])
    assert attempts == [2, 2]
    assert (result.accepted, result.duplicates) == (2, 1)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b"]


def test_other_database_errors_are_not_retried(monkeypatch):
    from django.db import OperationalError

    from experiments.services import ingestion

    make_metric("adoption")
    attempts = []

    def broken(rows, *, received_at):
        attempts.append(1)
        raise OperationalError("disk full")

    monkeypatch.setattr(ingestion, "_store_events", broken)
    with pytest.raises(OperationalError):
        ingestion.ingest_events([good_event()])
    assert attempts == [1]


# --- concurrency (PostgreSQL) ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_overlapping_concurrent_batches_store_each_event_once_without_errors(
    postgres, integration_user
):
    """Threads send overlapping batches in different orders: before the events
    were written in one order, PostgreSQL answered some of them "deadlock
    detected" (500)."""
    import random

    from django.db import connection

    make_metric("adoption")
    ids = [f"ev-{i:05d}" for i in range(3000)]
    threads, rounds, batch = 6, 4, 1500
    statuses: list[int] = []
    totals = {"accepted": 0, "duplicates": 0, "sent": 0}
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def send(seed: int) -> None:
        client = token_client(integration_user)
        client.raise_request_exception = False  # a 500 is an answer to count here
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(rounds):
                chosen = rng.sample(ids, batch)
                events = [{"event_id": e, "unit_id": e[-3:], "metric": "adoption"} for e in chosen]
                response = post_json(client, "/api/v1/events/", {"events": events})
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        body = response.json()
                        totals["accepted"] += body["accepted"]
                        totals["duplicates"] += body["duplicates"]
                        totals["sent"] += batch
        finally:
            connection.close()

    workers = [threading.Thread(target=send, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    server_errors = [status for status in statuses if status >= 500]
    print(f"concurrent batches: {len(statuses)} answers, {len(server_errors)} server errors")
    assert statuses == [200] * (threads * rounds)
    stored = Event.objects.count()
    distinct = Event.objects.values("event_id").distinct().count()
    assert stored == distinct == totals["accepted"]
    assert totals["accepted"] + totals["duplicates"] == totals["sent"]
    assert stored <= len(ids)
    print(f"rows: {stored}, distinct event ids: {distinct}, sent: {totals['sent']}")
