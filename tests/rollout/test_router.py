"""Routing: deterministic, monotone in the share, staff at internal, the
experiment at ab, everyone stable after a rollback."""

import time

import pytest

from experiments.models import Exposure
from rollout import config_cache, router
from rollout.services import lifecycle
from tests.factories import make_experiment, make_rollout

pytestmark = pytest.mark.django_db

UNITS = [f"mentee-{i}" for i in range(4000)]


def versions(rollout_key):
    return {u: router.route(rollout_key, u).version for u in UNITS}


def test_canary_share_is_respected_and_deterministic():
    rollout = make_rollout(stage="canary")
    first = versions(rollout.key)
    share = sum(v == "canary" for v in first.values()) / len(UNITS)
    assert 0.035 < share < 0.065
    config_cache.clear_local()
    assert versions(rollout.key) == first


def test_raising_the_share_never_moves_a_canary_unit_back(django_capture_on_commit_callbacks):
    rollout = make_rollout(stage="canary")
    before = versions(rollout.key)
    from rollout.models import Rollout

    with django_capture_on_commit_callbacks(execute=True):
        Rollout.objects.filter(id=rollout.id).update(canary_percent=50)
        rollout.refresh_from_db()
        config_cache.publish(rollout)
    after = versions(rollout.key)
    assert all(after[u] == "canary" for u, v in before.items() if v == "canary")
    assert sum(v == "canary" for v in after.values()) > 5 * sum(
        v == "canary" for v in before.values()
    )


def test_internal_stage_gives_the_canary_only_to_staff_and_allow_listed_units():
    rollout = make_rollout(allow_list=["mentee-7"])
    assert rollout.stage == "internal"
    assert router.route(rollout.key, "mentee-7").version == "canary"
    assert router.route(rollout.key, "mentee-8").version == "stable"
    assert router.route(rollout.key, "mentee-8", is_staff=True).version == "canary"


def test_a_rollback_sends_everyone_to_stable_at_once(django_capture_on_commit_callbacks):
    rollout = make_rollout(stage="ab")
    assert "canary" in versions(rollout.key).values()
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.rollback_rollout(rollout=rollout, reason="drill") is True
    assert set(versions(rollout.key).values()) == {"stable"}


def test_another_process_sees_a_rollback_within_one_second(
    django_capture_on_commit_callbacks, monkeypatch
):
    rollout = make_rollout(stage="canary")
    unit = next(u for u, v in versions(rollout.key).items() if v == "canary")
    stale = config_cache._rollouts._local[rollout.key]  # what another process holds now
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.rollback_rollout(rollout=rollout, reason="drill")
    config_cache._rollouts._local[rollout.key] = stale
    assert router.route(rollout.key, unit).version == "canary"  # still within its second
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + config_cache.LOCAL_TTL_SECONDS)
    assert router.route(rollout.key, unit).version == "stable"
    assert config_cache.LOCAL_TTL_SECONDS <= 1.0


def test_ab_stage_follows_the_experiment_and_records_exposures():
    experiment = make_experiment("rec-v2")
    rollout = make_rollout(stage="ab", experiment=experiment)
    answers = {u: router.route(rollout.key, u) for u in UNITS[:200]}
    for route in answers.values():
        assert route.version == ("stable" if route.variant == "control" else "canary")
    assert Exposure.objects.filter(experiment=experiment, stage="ab").count() == 200


def test_canary_units_of_a_running_experiment_are_marked_as_carryover():
    experiment = make_experiment("rec-v2")
    rollout = make_rollout(stage="canary", experiment=experiment)
    canary = [u for u, v in versions(rollout.key).items() if v == "canary"]
    assert Exposure.objects.filter(experiment=experiment, stage="canary").count() == len(canary)


def test_a_feature_without_a_rollout_is_served_stable():
    assert router.route_feature("conversations", "anyone").version == "stable"
