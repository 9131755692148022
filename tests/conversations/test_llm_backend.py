"""The OpenAI-compatible backend configured through settings (a real local
chat-completions server) answers v2 messages with the memory in its prompt; when it fails
the mentee gets the friendly message, and the turn is stored and marked."""

from __future__ import annotations

import pytest

from conversations.memory import messages_tokens
from conversations.models import Summary, Turn
from conversations.responders.base import UNAVAILABLE_MESSAGE
from conversations.services import sessions, turns
from tests.conversations.conftest import SUMMARY_REPLY

pytestmark = pytest.mark.django_db

INTRODUCTION = "My name is Mina and I want to become a data scientist."


def test_v2_replies_come_from_the_configured_backend_with_memory_in_the_prompt(
    mina, v2_for_everyone, llm_backend
):
    session_id = mina.start().json()["session_id"]
    first = mina.say(session_id, INTRODUCTION).json()
    second = mina.say(session_id, "Where should I start?").json()

    assert first["reply"] == "Model reply 1." and second["reply"] == "Model reply 2."
    assert not second["degraded"]
    sent = llm_backend.chat_requests()
    assert len(sent) == 2
    assert sent[1]["model"] == "mentor-test"
    system = sent[1]["messages"][0]
    assert system["role"] == "system"
    assert "- Name: Mina" in system["content"]
    assert "- Goal: become a data scientist" in system["content"]
    assert [m["content"] for m in sent[1]["messages"][1:]] == [
        INTRODUCTION,
        "Model reply 1.",
        "Where should I start?",
    ]
    reply = Turn.objects.get(session_id=session_id, index=3)
    assert reply.backend == "openai-compat:mentor-test"
    assert reply.tokens == 105  # as the backend reported
    assert reply.context_tokens == messages_tokens(sent[1]["messages"])
    assert reply.latency_ms is not None and reply.latency_ms > 0


def test_v1_stays_offline_even_when_a_backend_is_configured(mina, llm_backend):
    session_id = mina.start().json()["session_id"]
    answer = mina.say(session_id, "How do I write a good resume?").json()
    assert answer["version"] == "stable"
    assert llm_backend.requests == []
    assert Turn.objects.get(session_id=session_id, index=1).backend == "offline-kb"


def test_a_failing_backend_gives_the_friendly_message_and_the_turn_is_kept_and_marked(
    mina, v2_for_everyone, llm_backend
):
    session_id = mina.start().json()["session_id"]
    llm_backend.failing = True
    answer = mina.say(session_id, INTRODUCTION)
    assert answer.status_code == 200
    assert answer.json()["reply"] == UNAVAILABLE_MESSAGE
    assert answer.json()["degraded"] is True
    assert len(llm_backend.requests) == 2  # one retry (LLM_MAX_RETRIES = 1)
    failed = Turn.objects.get(session_id=session_id, index=1)
    assert (failed.degraded, failed.text, failed.tokens) == (True, UNAVAILABLE_MESSAGE, 0)

    llm_backend.failing = False
    recovered = mina.say(session_id, "Where should I start?").json()
    assert recovered["reply"].startswith("Model reply") and not recovered["degraded"]
    # The apology is in the transcript, never in the next prompt; the mentee's words are.
    prompt = [m["content"] for m in llm_backend.chat_requests()[-1]["messages"][1:]]
    assert prompt == [INTRODUCTION, "Where should I start?"]
    history = mina.history(session_id).json()["turns"]
    assert [t["degraded"] for t in history] == [False, True, False, False]


def test_the_rolling_summary_is_written_by_the_backend_and_falls_back_when_it_fails(
    mina, v2_for_everyone, llm_backend
):
    session_id = mina.start().json()["session_id"]
    long_message = "I keep studying SQL joins, window functions and pandas every evening. " * 8

    def send(text: str) -> None:
        turns.send_message(session_id=session_id, user_id="mina-42", text=text, budget_tokens=500)

    send(INTRODUCTION)
    while not llm_backend.summary_requests():
        assert len(llm_backend.chat_requests()) < 10, "the summary never rolled"
        send(long_message)
    assert len(llm_backend.summary_requests()) == 1
    summary = Summary.objects.get(session_id=session_id)
    assert summary.text == SUMMARY_REPLY
    asked = llm_backend.summary_requests()[0]["messages"][1]["content"]
    assert f"Mentee: {INTRODUCTION}" in asked

    llm_backend.failing = True
    while summary.text == SUMMARY_REPLY:
        assert Turn.objects.filter(session_id=session_id).count() < 40, "no fallback summary"
        send(long_message)
        summary.refresh_from_db()
    assert summary.text.startswith(("Mentee: ", "Mentor: "))  # the extractive fallback
    sizes = Turn.objects.filter(role="assistant").values_list("context_tokens", flat=True)
    assert all(size <= 500 for size in sizes)


class Crashing:
    backend = "crashing"

    def respond(self, messages, *, facts):
        raise RuntimeError("a bug in a responder")


def test_a_crashing_responder_fails_the_request_but_leaves_no_hole_in_the_transcript():
    session = sessions.start_session(user_id="mina-42", topic="career", version="canary").session
    with pytest.raises(RuntimeError):
        turns.send_message(
            session_id=session.id, user_id="mina-42", text="Hello", responder=Crashing()
        )
    stored = list(Turn.objects.filter(session=session).values_list("index", "role", "degraded"))
    assert stored == [(0, "user", False), (1, "assistant", True)]
    after = turns.send_message(session_id=session.id, user_id="mina-42", text="Hello again")
    assert (after.message.index, after.reply.index) == (2, 3)
