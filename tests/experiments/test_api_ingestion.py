"""Events and exposures: per-item validation, exactly-once storage."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import Event, Exposure
from experiments.services import ingestion
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db


def post_events(api, events):
    return api.post("/api/v1/events/", {"events": events}, format="json")


def test_valid_events_are_stored(integration_api):
    make_metric("adoption")
    response = post_events(
        integration_api,
        [
            {"event_id": "e1", "unit_id": "u1", "metric": "adoption"},
            {
                "event_id": "e2",
                "unit_id": "u2",
                "metric": "adoption",
                "value": 2.5,
                "timestamp": "2026-11-01T10:00:00Z",
            },
        ],
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    stored = Event.objects.get(event_id="e2")
    assert stored.value == 2.5
    assert stored.timestamp.isoformat() == "2026-11-01T10:00:00+00:00"
    assert Event.objects.get(event_id="e1").value == 1.0


def test_an_event_id_is_stored_once_within_and_across_batches(integration_api):
    make_metric("adoption")
    first = post_events(
        integration_api,
        [
            {"event_id": "e1", "unit_id": "u1", "metric": "adoption"},
            {"event_id": "e1", "unit_id": "u1", "metric": "adoption"},
        ],
    ).json()
    assert (first["accepted"], first["duplicates"]) == (1, 1)
    second = post_events(
        integration_api,
        [
            {"event_id": "e1", "unit_id": "u1", "metric": "adoption"},
            {"event_id": "e2", "unit_id": "u1", "metric": "adoption"},
        ],
    ).json()
    assert (second["accepted"], second["duplicates"]) == (1, 1)
    assert Event.objects.count() == 2


def test_a_retried_batch_without_event_ids_is_not_counted_twice(integration_api):
    make_metric("adoption")
    batch = [
        {"unit_id": "u1", "metric": "adoption", "timestamp": "2026-11-01T10:00:00Z"},
        {"unit_id": "u1", "metric": "adoption", "timestamp": "2026-11-01T10:00:00Z"},
        {"unit_id": "u2", "metric": "adoption"},
    ]
    first = post_events(integration_api, batch).json()
    assert first == {"accepted": 3, "duplicates": 0, "rejected": []}
    retry = post_events(integration_api, batch).json()
    assert retry == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert Event.objects.count() == 3
    assert all(e.startswith("auto-") for e in Event.objects.values_list("event_id", flat=True))


def test_bad_items_are_rejected_with_their_index_and_the_good_ones_stored(integration_api):
    make_metric("adoption")
    future = (timezone.now() + timedelta(hours=25)).isoformat()
    items = [
        {"event_id": "ok-1", "unit_id": "u1", "metric": "adoption"},
        {"event_id": "bad-1", "unit_id": "u1", "metric": "unknown"},
        {"event_id": "bad-2", "metric": "adoption"},
        {"event_id": "bad-3", "unit_id": "u1", "metric": "adoption", "value": "lots"},
        {"event_id": "bad-4", "unit_id": "u1", "metric": "adoption", "timestamp": future},
        {"event_id": "bad-5", "unit_id": "x" * 201, "metric": "adoption"},
        {"event_id": "bad-6", "unit_id": "u1", "metric": "adoption", "timestamp": "yesterday"},
        "not an object",
        {"event_id": "y" * 201, "unit_id": "u1", "metric": "adoption"},
        {"event_id": "ok-2", "unit_id": "u2", "metric": "adoption", "value": 0},
    ]
    body = post_events(integration_api, items).json()
    assert body["accepted"] == 2
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert rejected[1] == {"metric": ["Unknown metric 'unknown'."]}
    assert rejected[2] == {"unit_id": ["This field is required."]}
    assert rejected[3] == {"value": ["Must be a number."]}
    assert "24 hours in the future" in rejected[4]["timestamp"][0]
    assert "at most 200 characters" in rejected[5]["unit_id"][0]
    assert "not an ISO 8601" in rejected[6]["timestamp"][0]
    assert "JSON object" in rejected[7]["non_field_errors"][0]
    assert "at most 200 characters" in rejected[8]["event_id"][0]
    assert set(Event.objects.values_list("event_id", flat=True)) == {"ok-1", "ok-2"}


def test_nan_and_infinite_values_are_rejected_per_item(integration_api):
    make_metric("adoption")
    raw = (
        '{"events": [{"event_id": "a", "unit_id": "u", "metric": "adoption", "value": NaN},'
        ' {"event_id": "b", "unit_id": "u", "metric": "adoption", "value": 1e999},'
        ' {"event_id": "c", "unit_id": "u", "metric": "adoption", "value": 3}]}'
    )
    body = integration_api.post("/api/v1/events/", raw, content_type="application/json").json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert "finite" in body["rejected"][0]["errors"]["value"][0]


@pytest.mark.parametrize(
    "raw",
    ["not json", "[]", '{"events": {}}', '{"events": []}', '{"items": [1]}'],
)
def test_a_malformed_body_is_400_and_stores_nothing(integration_api, raw):
    make_metric("adoption")
    response = integration_api.post("/api/v1/events/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()
    assert not Event.objects.exists()


def test_a_batch_over_10000_events_is_400_and_stores_nothing(integration_api):
    make_metric("adoption")
    events = [{"event_id": f"e{i}", "unit_id": "u", "metric": "adoption"} for i in range(10_001)]
    response = integration_api.post(
        "/api/v1/events/", json.dumps({"events": events}), content_type="application/json"
    )
    assert response.status_code == 400
    assert "at most 10000" in response.json()["detail"]
    assert not Event.objects.exists()


def test_a_full_batch_of_10000_is_stored(integration_api):
    make_metric("adoption")
    events = [
        {"event_id": f"e{i}", "unit_id": f"u{i % 500}", "metric": "adoption"} for i in range(10_000)
    ]
    response = integration_api.post(
        "/api/v1/events/", json.dumps({"events": events}), content_type="application/json"
    )
    assert response.json()["accepted"] == 10_000
    assert Event.objects.count() == 10_000


def test_a_batch_is_all_or_nothing_when_storage_fails_midway(monkeypatch):
    make_metric("adoption")
    real_pg, real_generic = ingestion._store_events_postgresql, ingestion._store_events_generic

    def die_after(real):
        def store(rows, received_at):
            real(rows, received_at)
            raise RuntimeError("process died after writing")

        return store

    monkeypatch.setattr(ingestion, "_store_events_postgresql", die_after(real_pg))
    monkeypatch.setattr(ingestion, "_store_events_generic", die_after(real_generic))
    with pytest.raises(RuntimeError):
        ingestion.ingest_events(
            [{"event_id": f"e{i}", "unit_id": "u", "metric": "adoption"} for i in range(50)]
        )
    assert not Event.objects.exists()


def test_the_postgresql_path_uses_copy_and_counts_conflicts(postgres):
    make_metric("adoption")
    ingestion.ingest_events([{"event_id": "a", "unit_id": "u", "metric": "adoption"}])
    result = ingestion.ingest_events(
        [
            {"event_id": "a", "unit_id": "u", "metric": "adoption"},
            {"event_id": "b", "unit_id": "u", "metric": "adoption"},
        ]
    )
    assert (result.accepted, result.duplicates) == (1, 1)
    # The staging table is empty again: nothing leaks into the next batch.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM experiments_event_staging")
        assert cursor.fetchone()[0] == 0


def test_events_can_use_numeric_unit_ids_and_epoch_timestamps(integration_api):
    make_metric("adoption")
    body = post_events(
        integration_api, [{"unit_id": 42, "metric": "adoption", "timestamp": 1_780_000_000}]
    ).json()
    assert body["accepted"] == 1
    assert Event.objects.get().unit_id == "42"


# --- exposures ---------------------------------------------------------------------


def post_exposures(api, exposures):
    return api.post("/api/v1/exposures/", {"exposures": exposures}, format="json")


def test_exposures_decided_outside_are_recorded_once(integration_api):
    make_experiment("rec-v2")
    item = {
        "experiment": "rec-v2",
        "unit_id": "u1",
        "variant": "treatment",
        "timestamp": "2026-11-20T08:00:00Z",
    }
    assert post_exposures(integration_api, [item]).json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [],
    }
    assert post_exposures(integration_api, [item]).json() == {
        "accepted": 0,
        "duplicates": 1,
        "rejected": [],
    }
    exposure = Exposure.objects.get()
    assert exposure.exposed_at.isoformat() == "2026-11-20T08:00:00+00:00"


def test_an_exposure_with_another_variant_is_rejected_for_that_item(integration_api):
    make_experiment("rec-v2")
    post_exposures(
        integration_api, [{"experiment": "rec-v2", "unit_id": "u1", "variant": "control"}]
    )
    body = post_exposures(
        integration_api,
        [
            {"experiment": "rec-v2", "unit_id": "u1", "variant": "treatment"},
            {"experiment": "rec-v2", "unit_id": "u2", "variant": "treatment"},
            {"experiment": "rec-v2", "unit_id": "u3", "variant": "nope"},
            {"experiment": "nope", "unit_id": "u4", "variant": "control"},
            {"experiment": "rec-v2", "unit_id": "u5", "variant": "control"},
            {"experiment": "rec-v2", "unit_id": "u5", "variant": "treatment"},
        ],
    ).json()
    assert body["accepted"] == 2
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(rejected) == [0, 2, 3, 5]
    assert "already exposed to variant 'control'" in rejected[0]["variant"][0]
    assert "has no variant 'nope'" in rejected[2]["variant"][0]
    assert "Unknown experiment 'nope'" in rejected[3]["experiment"][0]
    assert dict(Exposure.objects.values_list("unit_id", "variant__key")) == {
        "u1": "control",
        "u2": "treatment",
        "u5": "control",
    }


def test_exposures_to_a_draft_experiment_are_rejected(integration_api):
    make_experiment("rec-v2", start=False)
    body = post_exposures(
        integration_api, [{"experiment": "rec-v2", "unit_id": "u1", "variant": "control"}]
    ).json()
    assert "is draft, not running" in body["rejected"][0]["errors"]["experiment"][0]
    assert not Exposure.objects.exists()


def test_the_import_command_goes_through_the_same_service(tmp_path, capsys):
    from django.core.management import call_command

    make_experiment("rec-v2")
    exposures = tmp_path / "exposures.csv"
    exposures.write_text(
        "experiment,unit_id,variant,timestamp\n"
        "rec-v2,u1,control,2026-11-20T08:00:00Z\n"
        "rec-v2,u2,treatment,2026-11-20T08:00:00Z\n"
        "rec-v2,u3,purple,\n"
    )
    events = tmp_path / "events.csv"
    events.write_text(
        "event_id,unit_id,metric,value,timestamp\n"
        "e1,u1,adoption,1,2026-11-20T09:00:00Z\n"
        "e2,u2,adoption,,2026-11-20T09:00:00Z\n"
        "e2,u2,adoption,,2026-11-20T09:00:00Z\n"
        "e3,u2,adoption,abc,\n"
    )
    call_command("import_experiment_data", exposures=exposures, events=events, batch_size=2)
    out, err = capsys.readouterr()
    assert "exposures: 2 accepted, 0 duplicates, 1 rejected" in out
    assert "events: 2 accepted, 1 duplicates, 1 rejected" in out
    assert "events.csv:5" in err
    assert Event.objects.count() == 2
    assert Exposure.objects.count() == 2
