"""The rollout router decides the version: stable serves v1 (single turn, no memory),
canary serves v2 (multi-turn with memory). A session keeps its version, and its requests
are counted under it, until a rollback sends everyone to stable."""

from __future__ import annotations

import pytest

from conversations.models import ConversationSession, MemoryFact
from rollout import config_cache, metrics_store, router
from rollout.models import MetricWindow, Rollout
from rollout.services import lifecycle
from tests.conversations.conftest import Mentee
from tests.factories import make_rollout

pytestmark = pytest.mark.django_db

INTRODUCTION = "My name is Mina and I want to become a data scientist."
QUESTION = "How should I prepare for technical interviews?"


@pytest.fixture
def canary_rollout():
    return make_rollout("conversations-canary", feature="conversations", stage="canary")


def unit_with(rollout, version: str) -> str:
    return next(
        unit
        for unit in (f"mentee-{i}" for i in range(2000))
        if router.route(rollout.key, unit).version == version
    )


def requests_counted(rollout, version: str) -> int:
    metrics_store.push()
    metrics_store.flush_to_database()
    return sum(
        MetricWindow.objects.filter(rollout=rollout, version=version).values_list(
            "requests", flat=True
        )
    )


def set_canary_share(rollout, percent: float) -> None:
    Rollout.objects.filter(id=rollout.id).update(canary_percent=percent)
    rollout.refresh_from_db()
    config_cache.publish(rollout)
    config_cache.clear_local()


def test_canary_units_get_v2_with_memory_and_stable_units_v1_without(
    integration_api, canary_rollout
):
    v2 = Mentee(integration_api, unit_with(canary_rollout, "canary"))
    v1 = Mentee(integration_api, unit_with(canary_rollout, "stable"))
    replies = {}
    for mentee in (v1, v2):
        started = mentee.start()
        assert started.status_code == 201
        session_id = started.json()["session_id"]
        assert mentee.say(session_id, INTRODUCTION).status_code == 200
        replies[mentee] = mentee.say(session_id, QUESTION).json()

    assert ConversationSession.objects.get(user_id=v2.user_id).version == "canary"
    assert ConversationSession.objects.get(user_id=v1.user_id).version == "stable"
    assert replies[v2]["version"] == "canary"
    assert replies[v2]["reply"].startswith("Mina, since your goal is to become a data scientist")
    assert replies[v1]["version"] == "stable"
    assert "Mina" not in replies[v1]["reply"]
    assert replies[v1]["reply"].startswith("Here is how I would approach it.")
    assert MemoryFact.objects.filter(user_id=v2.user_id).count() == 2
    assert not MemoryFact.objects.filter(user_id=v1.user_id).exists()  # v1 remembers nothing
    # Both versions' requests reach the request-metrics middleware.
    assert requests_counted(canary_rollout, "canary") == 3
    assert requests_counted(canary_rollout, "stable") == 3


def test_without_a_rollout_everyone_gets_the_stable_version(mina):
    started = mina.start()
    assert started.json()["version"] == "stable"


def test_a_session_keeps_its_version_and_is_counted_under_it(integration_api, canary_rollout):
    mentee = Mentee(integration_api, unit_with(canary_rollout, "canary"))
    session_id = mentee.start().json()["session_id"]
    mentee.say(session_id, INTRODUCTION)
    before = requests_counted(canary_rollout, "canary")

    set_canary_share(canary_rollout, 0)  # the router now says stable for this mentee
    answer = mentee.say(session_id, QUESTION).json()
    assert answer["version"] == "canary"
    assert answer["reply"].startswith("Mina, ")
    assert requests_counted(canary_rollout, "canary") == before + 1
    assert requests_counted(canary_rollout, "stable") == 0
    # A new session follows the router again.
    assert mentee.start("salary").json()["version"] == "stable"


def test_after_a_rollback_even_a_canary_session_is_served_v1(
    integration_api, canary_rollout, django_capture_on_commit_callbacks
):
    mentee = Mentee(integration_api, unit_with(canary_rollout, "canary"))
    session_id = mentee.start().json()["session_id"]
    mentee.say(session_id, INTRODUCTION)

    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.rollback_rollout(rollout=canary_rollout, reason="drill") is True
    answer = mentee.say(session_id, QUESTION).json()
    assert answer["version"] == "stable"
    assert "Mina" not in answer["reply"]
    assert mentee.start().json()["version"] == "stable"  # resumed, but served by v1
    assert ConversationSession.objects.get(id=session_id).version == "canary"  # as it began
