"""The proof of issue 8 through the API: a fact given in turn 2 is used in turn 9 and again
in a new session the next day; the token budget holds at every turn; memory can be viewed
and erased."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F

from conversations.models import ConversationSession, MemoryFact, Summary, Turn
from conversations.services import sessions
from conversations.services.turns import CONTEXT_BUDGET_TOKENS
from experiments.models import Event

pytestmark = pytest.mark.django_db

TEN_MESSAGES = [
    "Hi, I could use some career advice.",
    "My name is Mina and I want to become a data scientist.",
    "I use Excel a lot and a bit of SQL for reports. Statistics scares me a little.",
    "How long will it take to learn Python well enough for the job?",
    "Should I do Kaggle competitions or focus on my own portfolio projects?",
    "How do I write my resume when I have no data science job yet?",
    "How should I prepare for technical interviews?",
    "How do I negotiate my salary for the first offer?",
    "How can I find a mentor in data science?",
    "Thanks! How do I avoid burnout while studying after work?",
]


def converse(mentee, session_id, messages):
    replies = []
    for text in messages:
        answer = mentee.say(session_id, text)
        assert answer.status_code == 200, answer.json()
        replies.append(answer.json())
    return replies


def shift_back(session_id: int, delta: timedelta) -> None:
    """Move a session and its turns into the past (time travel without sleeping)."""
    ConversationSession.objects.filter(id=session_id).update(
        started_at=F("started_at") - delta,
        last_activity_at=F("last_activity_at") - delta,
        ended_at=F("ended_at") - delta,
    )
    Turn.objects.filter(session_id=session_id).update(created_at=F("created_at") - delta)


def test_a_fact_from_turn_2_is_used_in_turn_9_and_in_a_new_session_the_next_day(
    mina, v2_for_everyone
):
    started = mina.start("data science career")
    assert started.status_code == 201
    assert started.json()["version"] == "canary"
    assert started.json()["status"] == "active"
    session_id = started.json()["session_id"]

    replies = converse(mina, session_id, TEN_MESSAGES)

    assert [r["turn_index"] for r in replies] == list(range(1, 20, 2))
    assert "Mina" not in replies[0]["reply"]  # nothing known before she said it
    ninth = replies[8]["reply"]
    assert ninth.startswith("Mina, ")
    assert "become a data scientist" in ninth
    assert all(not r["degraded"] for r in replies)

    history = mina.history(session_id).json()
    assert len(history["turns"]) == 20
    assert history["goal"] == "become a data scientist"
    # The budget held at every turn.
    context_sizes = list(
        Turn.objects.filter(session_id=session_id, role="assistant").values_list(
            "context_tokens", flat=True
        )
    )
    assert len(context_sizes) == 10
    assert all(0 < size <= CONTEXT_BUDGET_TOKENS for size in context_sizes)

    assert mina.end(session_id, "reached").status_code == 200
    shift_back(session_id, timedelta(days=1))  # that conversation was yesterday

    today = mina.start("interviews")
    assert today.status_code == 201
    new_id = today.json()["session_id"]
    assert new_id != session_id
    first = mina.say(new_id, "What should I focus on this week?").json()
    assert first["turn_index"] == 1
    assert first["reply"].startswith("Mina, ")
    assert "become a data scientist" in first["reply"]

    # Coming back within 7 days is a return, counted once.
    assert sessions.compute_returns() == 1
    assert sessions.compute_returns() == 0
    returns = Event.objects.filter(metric__key="return", unit_id="mina-42")
    assert list(returns.values_list("event_id", flat=True)) == [f"conv-{new_id}-return"]


def test_memory_lists_each_fact_with_the_turn_it_came_from(mina, v2_for_everyone):
    session_id = mina.start().json()["session_id"]
    converse(mina, session_id, TEN_MESSAGES[:2])
    converse(mina, session_id, ["I'm a junior analyst and I prefer video courses."])

    memory = mina.memory()
    assert memory.status_code == 200
    facts = {f["key"]: f for f in memory.json()["facts"]}
    assert memory.json()["user_id"] == "mina-42"
    assert {k: f["value"] for k, f in facts.items()} == {
        "name": "Mina",
        "goal": "become a data scientist",
        "level": "junior",
        "field": "analyst",
        "preference": "video courses",
    }
    assert facts["name"]["source"] == {
        "session_id": session_id,
        "turn_index": 2,
        "quote": TEN_MESSAGES[1],
    }
    assert facts["level"]["source"]["turn_index"] == 4
    assert 0 < facts["name"]["confidence"] <= 1


def test_deleting_memory_really_forgets_the_mentee(mina, other_mentee, v2_for_everyone):
    session_id = mina.start().json()["session_id"]
    converse(mina, session_id, TEN_MESSAGES[:2])
    other_id = other_mentee.start().json()["session_id"]
    converse(other_mentee, other_id, ["Please call me Joon. I'm a senior backend developer."])
    Summary.objects.create(session_id=session_id, up_to_index=1, text="Mentee: My name is Mina.")

    assert mina.forget().status_code == 204

    assert mina.memory().json()["facts"] == []
    assert not MemoryFact.objects.filter(user_id="mina-42").exists()
    assert Summary.objects.get(session_id=session_id).text == ""  # the summary quoted her
    assert MemoryFact.objects.filter(user_id="joon-7").count() == 3  # others untouched
    reply = mina.say(session_id, "How should I prepare for technical interviews?").json()
    assert "Mina" not in reply["reply"]
    assert mina.forget().status_code == 204  # nothing left to forget is fine
    # The transcript is the conversation, not the memory: it stays.
    assert Turn.objects.filter(session_id=session_id).count() == 6
