"""Training from the database, offline evaluation, activation and the commands."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django_celery_beat.models import PeriodicTask

from common.errors import DomainError
from recommendations import model_store
from recommendations.models import ContentItem, Interaction, ModelVersion
from recommendations.services import demo, training
from recommendations.tasks import train_models

pytestmark = pytest.mark.django_db
K = 10


def test_ensemble_ndcg_is_at_least_1_2_times_popularity_on_the_held_out_split():
    demo.seed_demo(seed=0, n_users=400, items_per_cluster=10)
    evaluation = training.evaluate_from_database(k=K)
    results = evaluation.results
    assert evaluation.evaluated_users > 100
    assert set(results) == {"popularity", "cf", "content", "ensemble"}
    assert results["ensemble"][f"ndcg@{K}"] >= 1.2 * results["popularity"][f"ndcg@{K}"]
    assert results["ensemble"][f"recall@{K}"] > results["popularity"][f"recall@{K}"]


def test_the_training_task_stores_and_activates_v1_and_v2(seeded):
    version_id = train_models()
    ensemble = ModelVersion.objects.get(id=version_id)
    assert ensemble.engine == "ensemble" and ensemble.is_active
    popularity = ModelVersion.objects.get(engine="popularity", is_active=True)
    for version in (ensemble, popularity):
        assert version.n_items == 300
        assert version.n_interactions == Interaction.objects.count()
        assert version.artifact_bytes == len(bytes(version.artifact)) > 0
        assert version.activated_at is not None
        results = version.metrics["results"]
        assert results["ensemble"][f"ndcg@{K}"] > results["popularity"][f"ndcg@{K}"]
    assert ensemble.parameters["weights"] == {"cf": 0.6, "content": 0.3, "popularity": 0.1}
    assert model_store.active_model("ensemble").version_id == ensemble.id


def test_a_new_training_replaces_the_active_version_and_keeps_one_active_per_engine(trained):
    first = trained.versions["ensemble"]
    second = training.train_models(evaluate_first=False).versions["ensemble"]
    active = ModelVersion.objects.filter(engine="ensemble", is_active=True)
    assert list(active.values_list("id", flat=True)) == [second.id]
    assert ModelVersion.objects.get(id=first.id).is_active is False


def test_the_database_refuses_two_active_versions_of_one_engine(trained):
    row = ModelVersion.objects.get(id=trained.versions["ensemble"].id)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(
            engine="ensemble", training_cutoff=row.training_cutoff, artifact=b"x", is_active=True
        )


def test_serving_processes_pick_up_a_newly_activated_version(trained, monkeypatch):
    first = trained.versions["ensemble"].id
    assert model_store.active_model("ensemble").version_id == first
    second = training.train_models(evaluate_first=False).versions["ensemble"].id
    # within the refresh interval the process keeps what it has loaded …
    assert model_store.active_model("ensemble").version_id == first
    # … and checks again after it
    monkeypatch.setattr(model_store, "REFRESH_SECONDS", 0.0)
    assert model_store.active_model("ensemble").version_id == second


def test_old_inactive_versions_are_pruned(trained):
    for _ in range(training.KEEP_INACTIVE + 1):
        training.train_models(evaluate_first=False)
    for engine in ("ensemble", "popularity"):
        assert ModelVersion.objects.filter(engine=engine, is_active=False).count() == (
            training.KEEP_INACTIVE
        )


def test_training_an_empty_catalogue_is_refused_and_stores_nothing(db):
    with pytest.raises(DomainError) as refused:
        training.train_models()
    assert refused.value.code == "conflict"
    assert not ModelVersion.objects.exists()
    assert train_models() is None


def test_a_catalogue_without_interactions_still_trains(db):
    ContentItem.objects.create(kind="course", title="SQL basics", tags=["sql"])
    result = training.train_models()
    assert result.evaluation.skipped == "too few interactions"
    assert set(result.versions) == {"popularity", "ensemble"}


def test_retired_items_are_not_trained_on(seeded):
    retired = ContentItem.objects.order_by("id").first()
    ContentItem.objects.filter(id=retired.id).update(active=False)
    result = training.train_models(evaluate_first=False)
    assert result.versions["ensemble"].n_items == 299


def test_the_nightly_training_is_scheduled():
    task = PeriodicTask.objects.get(task="recommendations.train_models")
    assert task.enabled and task.crontab is not None
    assert (task.crontab.hour, task.crontab.minute) == ("3", "17")


def test_seeding_twice_loads_the_demo_data_once():
    out = io.StringIO()
    args = ["--users", "60", "--items-per-cluster", "10", "--no-train", "--verbosity", "0"]
    call_command("seed_recommendations", *args, stdout=out)
    items, interactions = ContentItem.objects.count(), Interaction.objects.count()
    assert items == 300 and interactions > 500
    call_command("seed_recommendations", *args, stdout=out)
    assert (ContentItem.objects.count(), Interaction.objects.count()) == (items, interactions)
    assert "already loaded" in out.getvalue()


def test_seed_command_trains_unless_told_not_to():
    call_command(
        "seed_recommendations",
        "--users",
        "60",
        "--items-per-cluster",
        "10",
        "--verbosity",
        "0",
        stdout=io.StringIO(),
    )
    assert ModelVersion.objects.filter(is_active=True).count() == 2


def test_evaluate_command_prints_the_table_and_stores_it_with_the_active_versions(trained):
    out = io.StringIO()
    call_command("evaluate_recommendations", "--k", "5", stdout=out)
    text = out.getvalue()
    for engine in ("popularity", "cf", "content", "ensemble"):
        assert f"\n{engine} " in text
    assert "precision@5" in text and "ndcg@5" in text and "coverage" in text
    for version in ModelVersion.objects.filter(is_active=True):
        assert version.metrics["k"] == 5
        assert set(version.metrics["results"]) == {"popularity", "cf", "content", "ensemble"}


def test_interactions_are_read_with_their_exact_posix_time():
    item = ContentItem.objects.create(kind="article", title="Giving feedback", tags=[])
    when = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    Interaction.objects.create(user_id="u", item=item, kind="view", weight=1, timestamp=when)
    (read,) = training.read_interactions(before=datetime(2027, 1, 1, tzinfo=UTC))
    assert (read.user_id, read.item_id, read.kind) == ("u", item.id, "view")
    assert read.timestamp == pytest.approx(when.timestamp(), abs=1e-3)
    assert training.read_interactions(before=when) == []
