"""Bad input answers clearly and changes nothing: 400 for invalid input, 404 for an unknown
session or another user's, 409 for a session in the wrong state, 401/403 without the right
credentials."""

from __future__ import annotations

import pytest

from conversations.models import ConversationSession, Turn
from experiments.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_id(mina):
    answer = mina.start("interviews")
    assert answer.status_code == 201
    return answer.json()["session_id"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "blank"),
        ("   \n\t ", "blank"),
        ("x" * 4001, "4000 characters"),
        ("가" * 1500, "tokens"),  # under 4 000 characters, but ~1 500 tokens
    ],
)
def test_an_empty_or_over_long_message_is_refused_and_nothing_is_stored(
    mina, session_id, text, why
):
    answer = mina.say(session_id, text)
    assert answer.status_code == 400
    assert "text" in answer.json()
    assert why in str(answer.json()["text"])
    assert not Turn.objects.exists()


def test_a_message_of_exactly_4000_characters_is_accepted(mina, session_id):
    text = ("I want to learn SQL. " * 200)[:4000]
    assert mina.say(session_id, text).status_code == 200


def test_an_unknown_session_answers_404_everywhere(mina):
    for answer in (
        mina.say(999_999, "Hello"),
        mina.history(999_999),
        mina.end(999_999),
        mina.rate(999_999, 5),
    ):
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"


def test_another_users_session_answers_like_an_unknown_one(mina, other_mentee, session_id):
    for answer in (
        other_mentee.say(session_id, "Hello"),
        other_mentee.history(session_id),
        other_mentee.end(session_id),
        other_mentee.rate(session_id, 5),
    ):
        assert answer.status_code == 404
        assert answer.json()["detail"] == f"Unknown conversation session {session_id}."
    session = ConversationSession.objects.get(id=session_id)
    assert (session.status, session.rating, session.next_turn_index) == ("active", None, 0)
    assert not Turn.objects.exists()


@pytest.mark.parametrize("rating", [0, 6, -1, "five", None, 4.5])
def test_a_rating_outside_1_to_5_is_refused(mina, session_id, rating):
    answer = mina.rate(session_id, rating)
    assert answer.status_code == 400
    assert "rating" in answer.json()
    assert ConversationSession.objects.get(id=session_id).rating is None
    assert not Event.objects.exists()


def test_ending_twice_answers_409_and_counts_the_session_once(mina, session_id):
    first = mina.end(session_id, "reached")
    assert first.status_code == 200
    assert first.json()["status"] == "ended" and first.json()["outcome"] == "reached"
    again = mina.end(session_id, "reached")
    assert again.status_code == 409
    assert again.json() == {
        "detail": f"Conversation session {session_id} is already ended.",
        "code": "conflict",
    }
    assert mina.end(session_id, "abandoned").status_code == 409
    keys = sorted(Event.objects.values_list("event_id", flat=True))
    assert keys == [f"conv-{session_id}-completion", f"conv-{session_id}-session_duration"]
    assert ConversationSession.objects.get(id=session_id).outcome == "reached"


def test_a_message_to_an_ended_session_answers_409_and_stores_nothing(mina, session_id):
    mina.end(session_id, "abandoned")
    answer = mina.say(session_id, "One more thing?")
    assert answer.status_code == 409
    assert "ended" in answer.json()["detail"]
    assert not Turn.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "career"}, "user_id"),
        ({"user_id": "mina-42"}, "topic"),
        ({"user_id": "mina-42", "topic": "  "}, "topic"),
        ({"user_id": "x" * 201, "topic": "career"}, "user_id"),
        ({"user_id": "mina-42", "topic": "t" * 101}, "topic"),
    ],
)
def test_starting_needs_a_user_and_a_topic(integration_api, body, field):
    answer = integration_api.post("/api/v2/conversations/", body, "json")
    assert answer.status_code == 400
    assert field in answer.json()
    assert not ConversationSession.objects.exists()


def test_history_needs_the_user_id_and_end_needs_a_known_outcome(mina, session_id):
    answer = mina.api.get(f"/api/v2/conversations/{session_id}/")
    assert answer.status_code == 400 and "user_id" in answer.json()
    answer = mina.end(session_id, "finished")
    assert answer.status_code == 400 and "outcome" in answer.json()
    assert ConversationSession.objects.get(id=session_id).status == "active"


def test_anonymous_callers_get_401_and_callers_without_the_permission_403(
    anon_api, executive_api, mina, session_id
):
    calls = [
        ("post", "/api/v2/conversations/", {"user_id": "mina-42", "topic": "career"}),
        ("post", f"/api/v2/conversations/{session_id}/messages/", {"user_id": "u", "text": "hi"}),
        ("get", f"/api/v2/conversations/{session_id}/?user_id=mina-42", None),
        (
            "post",
            f"/api/v2/conversations/{session_id}/end/",
            {"user_id": "u", "outcome": "reached"},
        ),
        ("post", f"/api/v2/conversations/{session_id}/feedback/", {"user_id": "u", "rating": 5}),
        ("get", "/api/v2/users/mina-42/memory/", None),
        ("delete", "/api/v2/users/mina-42/memory/", None),
    ]
    for client, status in ((anon_api, 401), (executive_api, 403)):
        for method, url, body in calls:
            answer = (
                getattr(client, method)(url, body, "json") if body else getattr(client, method)(url)
            )
            assert answer.status_code == status, (method, url)
    assert ConversationSession.objects.count() == 1
    assert not Turn.objects.exists()
