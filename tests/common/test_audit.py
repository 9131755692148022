"""The typed, append-only audit log of rollouts and experiments: writing,
refusing changes at every layer, reading through one selector, the CSV
export, the REST endpoints, and the migration that moved the old log."""

import csv
import importlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.test import Client

from common.audit import audit_of, filter_audit, write_audit
from common.models import AuditAction, AuditEntry
from experiments.models import Experiment
from rollout.models import Rollout
from tests.experiments.test_api_experiments import EXPERIMENT
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db

migration = importlib.import_module("rollout.migrations.0005_audit_moves_to_common")


def a_rollout(key: str = "rec-rollout") -> Rollout:
    # Straight to the table: these tests are about the log, not the rollout services.
    return Rollout.objects.create(key=key, name=key, feature=key)


def entry(subject=None, action=AuditAction.EXPERIMENT_EDITED, **extra) -> AuditEntry:
    subject = subject or make_experiment("rec-v2", start=False)
    return write_audit(action=action, subject=subject, message=extra.pop("message", "m"), **extra)


def test_an_entry_names_its_subject_by_type_id_and_key(pm_user):
    experiment = make_experiment("rec-v2", start=False)
    rollout = a_rollout()
    about_experiment = write_audit(
        action=AuditAction.EXPERIMENT_EDITED,
        subject=experiment,
        message="renamed",
        actor=pm_user,
        changed=["name"],
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    about_rollout = write_audit(action="paused", subject=rollout, message="paused")
    about_experiment.refresh_from_db()
    assert (about_experiment.object_type, about_experiment.object_id) == (
        "experiment",
        experiment.id,
    )
    assert about_experiment.object_key == "rec-v2"
    assert about_experiment.actor == pm_user
    assert about_experiment.data == {"changed": ["name"], "at": "2026-01-01T00:00:00Z"}
    assert (about_rollout.object_type, about_rollout.object_key) == ("rollout", "rec-rollout")
    assert about_rollout.action == AuditAction.PAUSED
    assert about_rollout.actor is None


@pytest.mark.parametrize("actor", [None, AnonymousUser()])
def test_an_anonymous_or_missing_actor_is_the_platform(actor):
    assert entry(actor=actor).actor_id is None


@pytest.mark.parametrize("action", ["transition_applied", "rollback_automatic", "", "Applied"])
def test_an_unknown_action_raises_and_stores_nothing(action):
    experiment = make_experiment("rec-v2", start=False)
    count = AuditEntry.objects.count()
    with pytest.raises(ValueError, match="Unknown audit action"):
        write_audit(action=action, subject=experiment, message="m")
    assert AuditEntry.objects.count() == count


def test_only_rollouts_and_experiments_are_audited():
    with pytest.raises(ValueError, match="rollouts and experiments"):
        write_audit(action=AuditAction.PAUSED, subject=make_metric("adoption"), message="m")
    with pytest.raises(ValueError, match="after the subject is saved"):
        write_audit(action=AuditAction.PAUSED, subject=Rollout(key="x"), message="m")
    assert not AuditEntry.objects.filter(action=AuditAction.PAUSED).exists()


def test_the_actions_are_exactly_the_agreed_ones():
    assert [a.value for a in AuditAction] == [
        "rollout_created",
        "requested",
        "approved",
        "rejected",
        "applied",
        "invalidated",
        "rolled_back",
        "paused",
        "resumed",
        "rearmed",
        "completed",
        "thresholds_changed",
        "plan_changed",
        "health_degraded",
        "health_failing",
        "health_recovered",
        "experiment_created",
        "experiment_started",
        "experiment_stopped",
        "experiment_edited",
        "experiment_archived",
    ]
    assert all(a.label and a.label != a.value for a in AuditAction)


def test_the_model_refuses_to_change_or_delete_an_entry():
    written = entry(message="original")
    written.message = "rewritten"
    with pytest.raises(PermissionError):
        written.save()
    with pytest.raises(PermissionError):
        written.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(id=written.id).update(message="x")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.get(id=written.id).save()
    assert AuditEntry.objects.get(id=written.id).message == "original"


def test_a_new_entry_given_an_old_id_does_not_overwrite_it():
    written = entry(message="original")
    impostor = AuditEntry(
        id=written.id,
        action=AuditAction.PAUSED,
        object_type="rollout",
        object_id=1,
        object_key="x",
        message="forged",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        impostor.save()
    assert AuditEntry.objects.get(id=written.id).message == "original"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE common_auditentry SET message = 'x' WHERE id = %s",
        "DELETE FROM common_auditentry WHERE id = %s",
        "TRUNCATE common_auditentry",
        "TRUNCATE common_auditentry CASCADE",
    ],
)
def test_postgresql_itself_refuses_to_change_the_log(postgres, sql):
    written = entry(message="original")
    with (
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # Test sessions may TRUNCATE (for Django's flush; see tests/conftest.py);
        # this one does not, as no ordinary session does.
        cursor.execute("SET LOCAL ion.audit_allow_truncate = 'off'")
        # The entry was written in this test's transaction: check its deferred
        # foreign key now, or PostgreSQL refuses TRUNCATE before the trigger runs.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql, [written.id] if "%s" in sql else None)
    assert AuditEntry.objects.get(id=written.id).message == "original"


def test_the_admin_shows_the_log_and_offers_no_way_to_change_it(client, pm_user):
    written = entry(message="looked at in the admin")
    client.force_login(pm_user)
    listing = client.get("/admin/common/auditentry/")
    assert listing.status_code == 200
    assert "looked at in the admin" in listing.content.decode()
    assert client.get("/admin/common/auditentry/add/").status_code == 403
    assert client.post(f"/admin/common/auditentry/{written.id}/delete/").status_code == 403
    change = client.post(f"/admin/common/auditentry/{written.id}/change/", {"message": "x"})
    assert change.status_code == 403
    assert AuditEntry.objects.get(id=written.id).message == "looked at in the admin"


class TestFilters:
    @pytest.fixture
    def log(self, pm_user, executive):
        experiment = make_experiment("exp", start=False)
        rollout = a_rollout("roll")
        return {
            "created": AuditEntry.objects.get(action=AuditAction.EXPERIMENT_CREATED),
            "paused": write_audit(
                action=AuditAction.PAUSED, subject=rollout, message="p", actor=pm_user
            ),
            "applied": write_audit(
                action=AuditAction.APPLIED, subject=rollout, message="a", actor=executive
            ),
            "edited": write_audit(
                action=AuditAction.EXPERIMENT_EDITED, subject=experiment, message="e", actor=pm_user
            ),
        }

    def test_with_no_filter_everything_newest_first(self, log):
        written = log
        ids = [e.id for e in filter_audit()]
        assert ids == sorted((e.id for e in written.values()), reverse=True)

    def test_each_filter_narrows(self, log, pm_user):
        written = log

        def ids(**filters):
            return {e.id for e in filter_audit(**filters)}

        assert ids(action=AuditAction.PAUSED) == {written["paused"].id}
        assert ids(action="experiment_edited") == {written["edited"].id}
        assert ids(object_type="experiment") == {written["created"].id, written["edited"].id}
        assert ids(object_key="roll") == {written["paused"].id, written["applied"].id}
        assert ids(actor="pm") == {written["paused"].id, written["edited"].id}
        assert ids(actor="pm", object_type="rollout") == {written["paused"].id}
        assert ids(actor="nobody") == set()

    def test_since_is_inclusive_and_until_exclusive(self, log):
        written = log
        stamp = written["applied"].created_at
        since = {e.id for e in filter_audit(since=stamp)}
        assert written["applied"].id in since and written["created"].id not in since
        until = {e.id for e in filter_audit(until=stamp)}
        assert written["applied"].id not in until and written["created"].id in until
        assert not filter_audit(since=stamp + timedelta(days=1)).exists()

    def test_audit_of_follows_the_id_not_a_reused_key(self, log):
        written = log
        experiment = Experiment.objects.get(key="exp")
        assert [e.id for e in audit_of(experiment)] == [written["edited"].id, written["created"].id]
        other = a_rollout("exp")  # a rollout may carry the key of an experiment
        assert not audit_of(other).exists()

    def test_one_query_brings_the_actors(self, log, django_assert_num_queries):
        with django_assert_num_queries(1):
            assert {e.actor.username for e in filter_audit() if e.actor} == {"pm", "exec"}


def parse_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


class TestCsvExport:
    @pytest.fixture
    def client(self, client, pm_user):
        client.force_login(pm_user)
        return client

    def test_it_needs_a_login(self):
        assert Client().get("/audit/?format=csv").status_code == 302

    def test_it_downloads_exactly_the_filtered_rows(self, client, pm_user):
        experiment = make_experiment("exp", start=False)
        rollout = a_rollout("roll")
        mine = write_audit(
            action=AuditAction.PAUSED,
            subject=rollout,
            message='Paused, "for now"\nsecond line',
            actor=pm_user,
            reason="Ünïcode",
        )
        write_audit(action=AuditAction.RESUMED, subject=rollout, message="r")
        write_audit(action=AuditAction.PAUSED, subject=experiment, message="x")

        response = client.get("/audit/?format=csv&object_type=rollout&action=paused")
        assert response.status_code == 200
        assert response.streaming
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith('attachment; filename="audit-')
        rows = parse_csv(response)
        assert rows == [
            {
                "created_at": mine.created_at.isoformat(),
                "action": "paused",
                "object_type": "rollout",
                "object_key": "roll",
                "actor": "pm",
                "message": 'Paused, "for now"\nsecond line',
                "data": json.dumps({"reason": "Ünïcode"}, ensure_ascii=False),
            }
        ]
        assert datetime.fromisoformat(rows[0]["created_at"]) == mine.created_at

    def test_without_filters_it_has_every_row_newest_first(self, client):
        experiment = make_experiment("exp")  # created and started
        rows = parse_csv(client.get("/audit/?format=csv"))
        assert [r["action"] for r in rows] == ["experiment_started", "experiment_created"]
        assert {r["object_key"] for r in rows} == {experiment.key}
        assert rows[0]["actor"] == ""  # the platform

    def test_the_dates_are_whole_days_both_included(self, client):
        make_experiment("exp", start=False)
        today = AuditEntry.objects.get().created_at.date().isoformat()
        both = f"/audit/?format=csv&date_from={today}&date_to={today}"
        assert len(parse_csv(client.get(both))) == 1
        assert parse_csv(client.get("/audit/?format=csv&date_to=2000-01-01")) == []
        assert parse_csv(client.get("/audit/?format=csv&date_from=9998-01-01")) == []

    def test_a_cell_a_spreadsheet_would_run_is_neutralised(self, client):
        experiment = make_experiment("exp", start=False)
        write_audit(
            action=AuditAction.EXPERIMENT_EDITED,
            subject=experiment,
            message='=HYPERLINK("http://example.invalid")',
        )
        rows = parse_csv(client.get("/audit/?format=csv&action=experiment_edited"))
        assert rows[0]["message"] == '\'=HYPERLINK("http://example.invalid")'

    @pytest.mark.parametrize(
        "query",
        [
            "action=%00",
            "object_key=%00",
            "actor=pm%00",
            "object_type=%00rollout",
            "date_from=%00",
            "date_to=2026-01-0%00",
            "rollout=%00",
            "action=nope",
            "date_from=2026-02-30",
            "date_to=26-01-01",
        ],
    )
    def test_bad_input_is_a_400_not_a_500(self, client, query):
        make_experiment("exp", start=False)
        response = client.get(f"/audit/?format=csv&{query}")
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/plain")
        assert response.content

    def test_a_large_export_streams_in_chunks(self, client, monkeypatch):
        """Rows are read with iterator(chunk_size), never all at once."""
        from common import audit

        experiment = make_experiment("exp", start=False)
        AuditEntry.objects.bulk_create(
            AuditEntry(
                action=AuditAction.EXPERIMENT_EDITED,
                object_type="experiment",
                object_id=experiment.id,
                object_key=experiment.key,
                message=f"edit {i}",
            )
            for i in range(250)
        )
        monkeypatch.setattr(audit, "CSV_CHUNK", 100)
        seen = []
        original = type(AuditEntry.objects.all()).iterator

        def spy(queryset, chunk_size=None):
            seen.append(chunk_size)
            return original(queryset, chunk_size=chunk_size)

        monkeypatch.setattr(type(AuditEntry.objects.all()), "iterator", spy)
        rows = parse_csv(client.get("/audit/?format=csv"))
        assert len(rows) == 251
        assert seen == [100]


class TestExperimentsWriteTheLog:
    def test_the_lifecycle_over_the_rest_api_is_audited_with_the_actor(self, pm_api, pm_user):
        make_metric("adoption")
        assert pm_api.post("/api/v1/experiments/", EXPERIMENT, format="json").status_code == 201
        url = "/api/v1/experiments/rec-v2/"
        assert pm_api.patch(url, {"traffic_percent": 80}, format="json").status_code == 200
        assert pm_api.patch(url, {"name": "Renamed"}, format="json").status_code == 200
        assert pm_api.post(url + "start/").status_code == 200
        assert pm_api.post(url + "stop/").status_code == 200
        experiment = Experiment.objects.get(key="rec-v2")
        entries = list(audit_of(experiment))[::-1]
        assert [(e.action, e.actor_id) for e in entries] == [
            (AuditAction.EXPERIMENT_CREATED, pm_user.id),
            (AuditAction.EXPERIMENT_EDITED, pm_user.id),
            (AuditAction.EXPERIMENT_EDITED, pm_user.id),
            (AuditAction.EXPERIMENT_STARTED, pm_user.id),
            (AuditAction.EXPERIMENT_STOPPED, pm_user.id),
        ]
        created, traffic, renamed, started, stopped = entries
        assert created.data["traffic_percent"] == 50
        assert [v["key"] for v in created.data["variants"]] == ["control", "treatment"]
        assert created.data["metrics"] == [
            {"metric": "adoption", "role": "primary", "min_effect": 0.1}
        ]
        assert traffic.data == {
            "changed": ["traffic_percent"],
            "before": {"traffic_percent": 50.0},
            "after": {"traffic_percent": 80.0},
        }
        assert "traffic_percent 50.0 → 80" in traffic.message
        assert renamed.data["changed"] == ["name"]
        assert renamed.data["before"] == {"name": "Recommendation engine v2"}
        assert renamed.data["after"] == {"name": "Renamed"}
        assert started.data == {"before": {"status": "draft"}, "after": {"status": "running"}}
        assert stopped.data == {"before": {"status": "running"}, "after": {"status": "stopped"}}

    def test_a_refused_change_writes_no_entry(self, pm_api):
        make_experiment("rec-v2", start=False, metrics=())
        count = AuditEntry.objects.count()
        assert pm_api.post("/api/v1/experiments/rec-v2/start/").status_code == 409
        assert pm_api.post("/api/v1/experiments/rec-v2/stop/").status_code == 409
        assert (
            pm_api.patch(
                "/api/v1/experiments/rec-v2/", {"traffic_percent": 120}, format="json"
            ).status_code
            == 400
        )
        assert AuditEntry.objects.count() == count

    def test_an_edit_that_changes_nothing_writes_nothing(self, pm_api):
        make_experiment("rec-v2", start=False)
        count = AuditEntry.objects.count()
        url = "/api/v1/experiments/rec-v2/"
        assert pm_api.patch(url, {"name": "rec-v2"}, format="json").status_code == 200
        assert pm_api.patch(url, {"traffic_percent": 100}, format="json").status_code == 200
        assert AuditEntry.objects.count() == count

    def test_the_audit_endpoint_of_an_experiment(self, pm_api, pm_user):
        make_metric("adoption")
        pm_api.post("/api/v1/experiments/", EXPERIMENT, format="json")
        pm_api.post("/api/v1/experiments/rec-v2/start/")
        body = pm_api.get("/api/v1/experiments/rec-v2/audit/").json()
        assert [e["action"] for e in body] == ["experiment_started", "experiment_created"]
        assert set(body[0]) == {
            "id",
            "created_at",
            "experiment",
            "actor",
            "action",
            "message",
            "data",
            "object_type",
            "object_key",
        }
        assert (body[0]["experiment"], body[0]["object_type"], body[0]["actor"]) == (
            "rec-v2",
            "experiment",
            "pm",
        )
        assert pm_api.get("/api/v1/experiments/nope/audit/").status_code == 404

    def test_the_schema_documents_both_audit_endpoints(self, pm_api):
        response = pm_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        schema = json.loads(response.content)
        for path, subject in (
            ("/api/v1/experiments/{key}/audit/", "experiment"),
            ("/api/v1/rollouts/{key}/audit/", "rollout"),
        ):
            answer = schema["paths"][path]["get"]["responses"]["200"]["content"]
            ref = answer["application/json"]["schema"]["items"]["$ref"].rsplit("/", 1)[-1]
            properties = schema["components"]["schemas"][ref]["properties"]
            assert {subject, "object_type", "object_key", "action", "actor"} <= set(properties)


class TestTheAdminOfExperiments:
    FORM = {
        "key": "from-admin",
        "name": "From the admin",
        "hypothesis": "",
        "traffic_percent": 100,
        "alpha": 0.05,
        "sequential": "on",
        "correction": "holm",
        "cuped_lookback_days": 14,
        "exclude_carryover": "on",
        "decision_policy": "{}",
        "variants-TOTAL_FORMS": 2,
        "variants-INITIAL_FORMS": 0,
        "variants-0-position": 0,
        "variants-0-key": "control",
        "variants-0-weight": 1,
        "variants-0-is_control": "on",
        "variants-0-payload": "{}",
        "variants-1-position": 1,
        "variants-1-key": "treatment",
        "variants-1-weight": 1,
        "variants-1-payload": "{}",
        "metrics-TOTAL_FORMS": 0,
        "metrics-INITIAL_FORMS": 0,
    }

    @pytest.fixture
    def client(self, client, pm_user):
        client.force_login(pm_user)
        return client

    def test_adding_and_editing_write_entries_with_old_and_new_values(self, client, pm_user):
        added = client.post("/admin/experiments/experiment/add/", self.FORM)
        assert added.status_code == 302, added.content.decode()[:2000]
        experiment = Experiment.objects.get(key="from-admin")
        created = audit_of(experiment).get()
        assert (created.action, created.actor_id) == (AuditAction.EXPERIMENT_CREATED, pm_user.id)
        assert [v["key"] for v in created.data["variants"]] == ["control", "treatment"]

        control, treatment = experiment.variants.order_by("position")
        form = {
            **self.FORM,
            "name": "Renamed in the admin",
            "traffic_percent": 40,
            "variants-INITIAL_FORMS": 2,
            "variants-0-id": control.id,
            "variants-0-experiment": experiment.id,
            "variants-1-id": treatment.id,
            "variants-1-experiment": experiment.id,
            "variants-1-weight": 3,
        }
        changed = client.post(f"/admin/experiments/experiment/{experiment.id}/change/", form)
        assert changed.status_code == 302, changed.content.decode()[:2000]
        edits = list(audit_of(experiment).filter(action=AuditAction.EXPERIMENT_EDITED))[::-1]
        assert [e.actor_id for e in edits] == [pm_user.id, pm_user.id]
        fields, variants = edits
        assert fields.data["changed"] == ["name", "traffic_percent"]
        assert fields.data["before"] == {"name": "From the admin", "traffic_percent": 100.0}
        assert fields.data["after"] == {"name": "Renamed in the admin", "traffic_percent": 40.0}
        assert variants.data["before"] == {"variants": {"treatment": {"weight": 1.0}}}
        assert variants.data["after"] == {"variants": {"treatment": {"weight": 3.0}}}

    def test_saving_without_a_change_writes_nothing(self, client):
        client.post("/admin/experiments/experiment/add/", self.FORM)
        experiment = Experiment.objects.get(key="from-admin")
        control, treatment = experiment.variants.order_by("position")
        form = {
            **self.FORM,
            "variants-INITIAL_FORMS": 2,
            "variants-0-id": control.id,
            "variants-0-experiment": experiment.id,
            "variants-1-id": treatment.id,
            "variants-1-experiment": experiment.id,
        }
        changed = client.post(f"/admin/experiments/experiment/{experiment.id}/change/", form)
        assert changed.status_code == 302
        assert audit_of(experiment).count() == 1

    def test_the_admin_actions_record_who_started_and_stopped(self, client, pm_user):
        experiment = make_experiment("rec-v2", start=False)
        for action in ("start_experiments", "stop_experiments"):
            response = client.post(
                "/admin/experiments/experiment/",
                {"action": action, "_selected_action": [experiment.id]},
            )
            assert response.status_code == 302
        assert [(e.action, e.actor_id) for e in audit_of(experiment)[:2]] == [
            (AuditAction.EXPERIMENT_STOPPED, pm_user.id),
            (AuditAction.EXPERIMENT_STARTED, pm_user.id),
        ]


class TestTheMovedLog:
    @pytest.mark.parametrize(
        ("old", "new", "extra"),
        [
            ("rollout_created", "rollout_created", {}),
            ("transition_requested", "requested", {}),
            ("transition_applied", "applied", {}),
            ("transition_rejected", "rejected", {}),
            ("transition_invalidated", "invalidated", {}),
            ("rollback_automatic", "rolled_back", {"automatic": True}),
            ("rollback_manual", "rolled_back", {"automatic": False}),
            ("rollout_rearmed", "rearmed", {}),
            ("health_degraded", "health_degraded", {}),
            ("health_failing", "health_failing", {}),
        ],
    )
    def test_the_old_names_map_one_to_one(self, old, new, extra):
        assert migration.current_action(old, {"reason": "r"}) == (new, {"reason": "r", **extra})
        assert migration.legacy_action(new, {"reason": "r", **extra}) == (old, {"reason": "r"})

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("transition_approved", "approved"),
            ("rollout_paused", "paused"),
            ("rollout_completed", "completed"),
            ("rollback_by_beat", "rolled_back"),
            ("health_healthy", "health_recovered"),
            ("health_insufficient_data", "health_degraded"),
            ("sla_changed", "thresholds_changed"),
            ("thresholds_updated", "thresholds_changed"),
            ("stages_edited", "plan_changed"),
            ("whatever", "plan_changed"),
        ],
    )
    def test_any_other_name_maps_to_the_closest_and_is_kept(self, old, new):
        action, data = migration.current_action(old, {"x": 1})
        assert action in AuditAction.values
        if old in migration.LEGACY_ACTIONS:
            return
        assert (action, data) == (new, {"x": 1, "legacy_action": old})
        assert migration.legacy_action(action, data) == (old, {"x": 1})

    def test_a_current_name_stays_as_it_is(self):
        assert migration.current_action("paused", {}) == ("paused", {})
        assert migration.current_action("rearmed", None) == ("rearmed", {})

    def test_the_migration_knows_every_current_action(self):
        # Every action that existed when the log moved; later ones have no legacy rows.
        added_later = {AuditAction.EXPERIMENT_ARCHIVED.value}
        assert set(AuditAction.values) - added_later == migration.CURRENT_ACTIONS


def test_the_rollout_shim_accepts_old_and_new_names():
    from rollout.services.audit import LEGACY_ACTIONS
    from rollout.services.audit import write_audit as legacy_write

    rollout = a_rollout()
    old = legacy_write(rollout=rollout, action="rollback_manual", message="m", reason="r")
    new = legacy_write(rollout=rollout, action=AuditAction.PAUSED, message="m")
    assert (old.action, old.data) == (AuditAction.ROLLED_BACK, {"automatic": False, "reason": "r"})
    assert new.action == AuditAction.PAUSED
    with pytest.raises(ValueError):
        legacy_write(rollout=rollout, action="rollout_exploded", message="m")
    for name, (action, extra) in LEGACY_ACTIONS.items():
        assert migration.current_action(name, {}) == (action.value, extra)
