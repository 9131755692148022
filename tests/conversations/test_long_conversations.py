"""Long conversations: the token budget holds at every turn while older turns roll into
the summary, the mentee's facts survive it all, and long messages stay cheap to read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.memory import TurnView, extract_facts
from conversations.models import Summary, Turn
from conversations.services import sessions, turns

pytestmark = pytest.mark.django_db

QUESTIONS = [
    "How should I prepare for technical interviews?",
    "How do I negotiate my salary for the first offer?",
    "How can I find a mentor in data science?",
    "What should be in my portfolio for a data job?",
    "How do I avoid burnout while studying after work?",
    "How do I get better at giving feedback to my team?",
]


@pytest.mark.parametrize("budget", [300, 800, turns.CONTEXT_BUDGET_TOKENS])
def test_the_budget_holds_at_every_turn_of_a_long_conversation(budget):
    t0 = timezone.now() - timedelta(hours=2)
    session = sessions.start_session(
        user_id="mina-42", topic="career", version="canary", now=t0
    ).session
    texts = ["My name is Mina and I want to become a data scientist.", *QUESTIONS * 5]
    replies = [
        turns.send_message(
            session_id=session.id,
            user_id="mina-42",
            text=text,
            budget_tokens=budget,
            now=t0 + timedelta(minutes=i),
        )
        for i, text in enumerate(texts)
    ]

    sizes = list(
        Turn.objects.filter(session=session, role="assistant").values_list(
            "context_tokens", flat=True
        )
    )
    assert len(sizes) == len(texts)
    assert max(sizes) <= budget
    summary = Summary.objects.get(session=session)  # older turns rolled into it
    assert summary.up_to_index > 0
    assert "Mentee: My name is Mina and I want to become a data scientist." in summary.text
    assert all(r.reply.text.startswith("Mina, ") for r in replies[1:])
    # What is read per turn stays bounded: the turns after the summary, not the history.
    unsummarised = Turn.objects.filter(session=session, index__gt=summary.up_to_index).count()
    assert unsummarised < 40


def test_a_fact_at_the_end_of_a_very_long_message_is_still_found():
    filler = "I have been reading about many different things lately. " * 60
    facts = extract_facts(TurnView(0, "user", filler + "My name is Mina."))
    assert [(f.key, f.value) for f in facts] == [("name", "Mina")]
    korean = "요즘 이것저것 많이 읽고 있어요. " * 150 + "저는 데이터 사이언티스트가 되고 싶어요."
    facts = extract_facts(TurnView(0, "user", korean[-4000:]))
    assert [(f.key, f.value) for f in facts] == [("goal", "데이터 사이언티스트가 되는 것")]
