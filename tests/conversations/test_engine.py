"""Planning a v2 turn (pure): the budget always holds, the window is the newest turns, the
older ones roll into the summary, and rolls are spaced out (hysteresis)."""

from __future__ import annotations

import random

import pytest

from conversations.engine import cap_summary, extractive_summariser, plan_turn, render_for_summary
from conversations.memory import (
    ContextBudgetError,
    Fact,
    TurnView,
    count_tokens,
    messages_tokens,
)

SYSTEM = "You are a mentor."
FACTS = {"name": Fact("name", "Mina", None, 0.95), "goal": Fact("goal", "become a data scientist")}
WORDS = [
    *("career", "data", "interview", "resume", "python", "statistics", "team", "feedback"),
    *("promotion", "salary", "project", "learning", "growth", "SQL", "pandas", "portfolio"),
    *("mentor", "면접", "이력서", "데이터"),
]


PLAIN_TALK = [
    "Start with descriptive statistics and probability, then hypothesis testing.",
    "How long will it take to learn Python well enough for the job?",
    "With an hour a day, most people can handle pandas and plotting within a few months.",
    "Should I also do Kaggle competitions or focus on my own projects?",
    "Do one or two competitions, but put most of your time into an end-to-end project.",
    "What about SQL, how deep should I go?",
    "Joins, window functions and aggregation cover most analytics interviews.",
]


def summariser(max_tokens: int = 120):
    return extractive_summariser(max_sentences=6, max_tokens=max_tokens)


def random_turns(rng: random.Random, n: int, start: int = 0) -> list[TurnView]:
    return [
        TurnView(
            start + i,
            "user" if (start + i) % 2 == 0 else "assistant",
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) + ".",
        )
        for i in range(n)
    ]


def plan(turns, *, summary="", budget=400, message="What next?", summarise=None, keep=0.6):
    return plan_turn(
        system_prompt=SYSTEM,
        facts=FACTS,
        summary=summary,
        unsummarised=turns,
        user_message=message,
        budget_tokens=budget,
        summary_max_tokens=120,
        keep_ratio=keep,
        summarise=summarise or summariser(),
    )


def test_the_context_never_exceeds_the_budget_and_keeps_the_newest_turns():
    rng = random.Random(8)
    for _ in range(80):
        budget = rng.randint(150, 1500)
        turns = random_turns(rng, rng.randint(0, 40))
        summary = "Mentee: My name is Mina." if rng.random() < 0.5 else ""
        result = plan(turns, summary=summary, budget=budget)
        assert result.context.tokens == messages_tokens(result.context.messages) <= budget
        assert result.folded + result.window == turns  # nothing lost, nothing reordered
        sent = [m["content"] for m in result.context.messages[1:-1]]
        assert sent == [t.text for t in result.window]
        assert result.context.messages[-1] == {"role": "user", "content": "What next?"}
        assert count_tokens(result.summary) <= 120 or not result.folded


def test_turns_that_fit_are_sent_verbatim_without_touching_the_summary():
    turns = [TurnView(0, "user", "My name is Mina."), TurnView(1, "assistant", "Hello Mina!")]
    result = plan(turns, summary="Mentee: I like SQL.")
    assert result.window == turns
    assert result.folded == [] and not result.summary_changed
    assert result.summary == "Mentee: I like SQL."
    assert (
        "Summary of the earlier conversation:\nMentee: I like SQL."
        in (result.context.messages[0]["content"])
    )
    assert "- Name: Mina" in result.context.messages[0]["content"]


def test_overflowing_turns_roll_into_the_summary_with_room_to_spare():
    turns = [TurnView(0, "user", "My name is Mina and I want to become a data scientist.")]
    turns += [
        TurnView(i, "assistant" if i % 2 else "user", text)
        for i, text in enumerate(PLAIN_TALK * 3, start=1)
    ]
    result = plan(turns, budget=300)
    assert result.folded and result.folded[0].index == 0
    assert result.summary_up_to == result.folded[-1].index
    assert "My name is Mina and I want to become a data scientist." in result.summary
    assert result.summary in result.context.messages[0]["content"]
    # Hysteresis: the next exchange fits without another roll.
    follow_up = [*result.window, TurnView(23, "user", "R?"), TurnView(24, "assistant", "Skip R.")]
    again = plan(follow_up, summary=result.summary, budget=300)
    assert again.folded == []


def test_a_long_summary_from_an_llm_is_cut_to_its_limit():
    long = " ".join(f"The mentee said thing number {i}." for i in range(200))
    assert count_tokens(cap_summary(long, 50)) <= 50
    assert cap_summary("  short.  ", 50) == "short."
    result = plan(random_turns(random.Random(1), 40), summarise=lambda previous, turns: long)
    assert count_tokens(result.summary) <= 120


def test_the_llm_sees_the_previous_summary_and_labelled_turns():
    text = render_for_summary(
        "Mentee: I like SQL.", [TurnView(4, "user", "Hi  there"), TurnView(5, "assistant", "Yo")]
    )
    assert text == "Summary so far:\nMentee: I like SQL.\nMentee: Hi there\nMentor: Yo"


def test_a_message_that_cannot_fit_is_refused_and_keep_ratio_is_checked():
    with pytest.raises(ContextBudgetError):
        plan([], budget=10, message="word " * 50)
    with pytest.raises(ValueError):
        plan([], keep=0)
