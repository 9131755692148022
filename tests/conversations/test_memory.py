"""Tests for conversations.memory (pure module: no Django needed)."""

from __future__ import annotations

import random

import pytest

from conversations.memory import (
    FACT_KEYS,
    MESSAGE_OVERHEAD_TOKENS,
    ContextBudgetError,
    Fact,
    TurnView,
    build_context,
    count_tokens,
    extract_facts,
    fact_values,
    facts_from_turns,
    merge_facts,
    message_tokens,
    messages_tokens,
    select_recent,
    summarise,
    update_summary,
)

SYSTEM_PROMPT = "You are a warm, practical career mentor. Give concrete next steps."

# A 10-turn conversation; turn 2 carries the facts that must survive.
CONVERSATION = [
    ("user", "Hi, I could use some career advice."),
    ("assistant", "Happy to help. What are you working towards at the moment?"),
    ("user", "My name is Mina and I want to become a data scientist."),
    (
        "assistant",
        "That is a great goal. Data science builds on statistics, Python and SQL, and on "
        "framing business questions well. Which of those do you already use at work?",
    ),
    ("user", "I use Excel a lot and a bit of SQL for reports. Statistics scares me a little."),
    (
        "assistant",
        "Start with descriptive statistics and probability, then hypothesis testing and "
        "regression. Practise each concept on a real dataset from your job so it sticks.",
    ),
    ("user", "How long will it take to learn Python well enough for the job?"),
    (
        "assistant",
        "With an hour a day, most people can handle pandas and plotting within three to four "
        "months. Rebuild one of your Excel reports in pandas as your first project.",
    ),
    ("user", "Should I also do Kaggle competitions or focus on my own projects?"),
    (
        "assistant",
        "Do one or two competitions to learn modelling tricks, but put most of your time into "
        "an end-to-end project with messy real data; that is what hiring managers ask about.",
    ),
]


def _turns(pairs: list[tuple[str, str]]) -> list[TurnView]:
    return [TurnView(i, role, text) for i, (role, text) in enumerate(pairs)]  # type: ignore[arg-type]


_WORD_TEXT = (
    "career data interview resume mentor goal python statistics team feedback promotion "
    "salary 면접 이력서 목표 개발자 데이터 성장 멘토링 project learning, growth! why? ok."
)
WORDS = _WORD_TEXT.split()


def _random_text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))


def _random_turns(rng: random.Random, n: int) -> list[TurnView]:
    return [TurnView(i, "user" if i % 2 == 0 else "assistant", _random_text(rng)) for i in range(n)]


# --------------------------------------------------------------------------------------------
# Token estimate
# --------------------------------------------------------------------------------------------


def test_count_tokens_basics():
    assert count_tokens("") == 0
    assert count_tokens("   \n\t") == 0
    assert count_tokens("I want to become a data scientist") == 8  # "scientist" is 9 letters
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("안녕하세요") == 5  # one per Hangul syllable
    assert count_tokens("제 목표는 개발자입니다.") == 11
    assert count_tokens("12345") == 2


def test_count_tokens_is_additive_over_whitespace():
    rng = random.Random(7)
    for _ in range(200):
        a, b = _random_text(rng), _random_text(rng)
        assert count_tokens(f"{a} {b}") == count_tokens(a) + count_tokens(b)
        assert count_tokens(a) > 0


def test_message_tokens_include_overhead():
    assert message_tokens("hi") == 1 + MESSAGE_OVERHEAD_TOKENS
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]
    assert messages_tokens(msgs) == 3 + 2 * MESSAGE_OVERHEAD_TOKENS


# --------------------------------------------------------------------------------------------
# Recent window
# --------------------------------------------------------------------------------------------


def test_select_recent_never_exceeds_budget_and_keeps_order():
    rng = random.Random(1234)
    for _ in range(500):
        turns = _random_turns(rng, rng.randint(0, 25))
        budget = rng.randint(-5, 400)
        picked = select_recent(turns, budget)
        used = sum(message_tokens(t.text) for t in picked)
        assert used <= max(budget, 0)
        # A contiguous suffix of the input, in the original order.
        assert picked == turns[len(turns) - len(picked) :]
        # Maximal: the next older turn would not have fitted.
        if len(picked) < len(turns):
            older = turns[len(turns) - len(picked) - 1]
            assert used + message_tokens(older.text) > budget


def test_select_recent_edge_cases():
    turns = _turns(CONVERSATION)
    assert select_recent([], 100) == []
    assert select_recent(turns, 0) == []
    assert select_recent(turns, 10_000) == turns
    last = turns[-1]
    assert select_recent(turns, message_tokens(last.text)) == [last]
    assert select_recent(turns, message_tokens(last.text) - 1) == []


# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------


def _facts(text: str) -> dict[str, str]:
    return {f.key: f.value for f in extract_facts(TurnView(3, "user", text))}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # goals
        ("I want to become a data scientist.", {"goal": "become a data scientist"}),
        ("My goal is to land a job at Google someday.", {"goal": "land a job at Google"}),
        ("my long-term goal is a staff engineer role", {"goal": "a staff engineer role"}),
        (
            "I'd like to transition into product management because I love people.",
            {"goal": "transition into product management"},
        ),
        ("I'm aiming to become a tech lead", {"goal": "become a tech lead"}),
        # field (+ level when it qualifies the role)
        ("I work in backend development at a startup.", {"field": "backend development"}),
        ("I'm a UX designer.", {"field": "UX designer"}),
        (
            "I work as a senior data engineer for Kakao.",
            {"field": "data engineer", "level": "senior"},
        ),
        ("My background is in marketing analytics.", {"field": "marketing analytics"}),
        # level
        ("I'm a junior.", {"level": "junior"}),
        ("I am a complete beginner!", {"level": "beginner"}),
        ("I'm new to programming.", {"level": "beginner"}),
        ("I'm an intermediate", {"level": "mid-level"}),
        # experience
        ("I have 3 years of experience.", {"experience_years": "3"}),
        ("I've been coding for two years.", {"experience_years": "2"}),
        ("I have 5 years in fintech", {"experience_years": "5"}),
        ("1.5 years of professional experience", {"experience_years": "1.5"}),
        # preferences
        ("I prefer video courses.", {"preference": "video courses"}),
        ("I like short articles.", {"preference": "short articles"}),
        ("I learn best through hands-on projects.", {"preference": "hands-on projects"}),
        # names
        ("My name is Mina.", {"name": "Mina"}),
        ("my name is mina", {"name": "Mina"}),
        ("Please call me Joon.", {"name": "Joon"}),
        ("Hi, I'm Sarah.", {"name": "Sarah"}),
        # several in one message, curly apostrophe
        (
            "I’m a junior backend developer with 2 years of experience and I prefer video courses.",
            {
                "field": "backend developer",
                "level": "junior",
                "experience_years": "2",
                "preference": "video courses",
            },
        ),
        (
            "My name is Mina and I want to become a data scientist.",
            {"name": "Mina", "goal": "become a data scientist"},
        ),
    ],
)
def test_extract_facts_english(text, expected):
    assert _facts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "제 목표는 데이터 사이언티스트가 되는 것입니다.",
            {"goal": "데이터 사이언티스트가 되는 것"},
        ),
        ("저는 데이터 사이언티스트가 되고 싶어요.", {"goal": "데이터 사이언티스트가 되는 것"}),
        ("저는 백엔드 개발자입니다.", {"field": "백엔드 개발자"}),
        ("저는 주니어 프론트엔드 개발자예요.", {"field": "프론트엔드 개발자", "level": "junior"}),
        ("백엔드 개발 분야에서 일하고 있어요.", {"field": "백엔드 개발"}),
        ("저는 신입이에요.", {"level": "entry-level"}),
        ("경력 3년이에요.", {"experience_years": "3"}),
        ("5년차 디자이너", {"experience_years": "5"}),
        ("제 이름은 민아입니다.", {"name": "민아"}),
        ("저는 민준이라고 합니다.", {"name": "민준"}),
        ("영상 강의를 선호해요.", {"preference": "영상 강의"}),
    ],
)
def test_extract_facts_korean(text, expected):
    assert _facts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I don't want to become a manager.",
        "Call me back later.",
        "I like my job.",
        "I'm not a beginner.",
        "저는 초보는 아니에요.",
        "What should I learn next?",
        "",
    ],
)
def test_extract_facts_ignores_non_statements(text):
    assert _facts(text) == {}


def test_extract_facts_only_reads_user_turns_and_records_source():
    text = "My name is Mina and I want to become a data scientist."
    assert extract_facts(TurnView(5, "assistant", text)) == []
    facts = extract_facts(TurnView(5, "user", text))
    assert [f.key for f in facts] == ["name", "goal"]  # FACT_KEYS order
    assert all(f.source_turn == 5 and 0 < f.confidence <= 1 for f in facts)
    assert all(f.key in FACT_KEYS for f in facts)


def test_merge_facts_later_overrides_and_inputs_untouched():
    existing = {"goal": Fact("goal", "become a data analyst", 1, 0.95)}
    snapshot = dict(existing)
    new = [Fact("goal", "become a data scientist", 4, 0.6), Fact("name", "Mina", 4, 0.95)]
    merged = merge_facts(existing, new)
    assert merged["goal"].value == "become a data scientist"  # later wins despite confidence
    assert merged["name"].value == "Mina"
    assert existing == snapshot
    # Replaying an older turn does not undo a newer statement...
    assert merge_facts(merged, [Fact("goal", "old goal", 2)])["goal"].value == (
        "become a data scientist"
    )
    # ...but facts without a turn (e.g. from a profile form) follow call order.
    assert merge_facts(merged, [Fact("goal", "from profile")])["goal"].value == "from profile"
    # Within one batch, the last one wins.
    batch = [Fact("level", "junior", 3), Fact("level", "mid-level", 3)]
    assert merge_facts({}, batch)["level"].value == "mid-level"


def test_facts_from_turns_tracks_changes_over_a_conversation():
    turns = _turns(
        [
            ("user", "I'm a junior backend developer."),
            ("assistant", "Nice. I'd like to become a better mentor, by the way."),
            ("user", "Actually my goal is to become an engineering manager. I'm a senior now."),
        ]
    )
    facts = facts_from_turns(turns)
    assert fact_values(facts) == {
        "field": "backend developer",
        "level": "senior",
        "goal": "become an engineering manager",
    }
    assert facts["level"].source_turn == 2


def test_fact_validation():
    with pytest.raises(ValueError):
        Fact("hobby", "chess")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Fact("goal", "x", confidence=1.5)
    with pytest.raises(ValueError):
        TurnView(0, "system", "x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def test_summary_is_deterministic_shorter_and_keeps_fact_sentences():
    turns = _turns(CONVERSATION)
    summary = summarise(turns, max_sentences=4)
    assert summary == summarise(list(turns), max_sentences=4)
    assert count_tokens(summary) < sum(count_tokens(t.text) for t in turns)
    assert len(summary) < sum(len(t.text) for t in turns)
    assert "Mentee: My name is Mina and I want to become a data scientist." in summary
    # Every line is labelled, at most four sentences, all taken verbatim from the input.
    lines = summary.splitlines()
    assert all(line.startswith(("Mentee: ", "Mentor: ")) for line in lines)
    all_text = " ".join(t.text for t in turns)
    for line in lines:
        assert line.split(": ", 1)[1] in all_text
    assert summary.count(".") + summary.count("?") <= 4


def test_summary_respects_max_tokens():
    rng = random.Random(99)
    for _ in range(100):
        turns = _random_turns(rng, rng.randint(1, 12))
        limit = rng.randint(0, 80)
        result = summarise(turns, max_sentences=None, max_tokens=limit)
        assert count_tokens(result) <= limit


def test_summary_of_nothing_and_argument_check():
    assert summarise([]) == ""
    with pytest.raises(ValueError):
        summarise(_turns(CONVERSATION), max_sentences=None, max_tokens=None)


def test_update_summary_rolls_forward_within_bounds():
    turns = _turns(CONVERSATION)
    summary = ""
    for start in range(0, len(turns), 2):  # fold two turns at a time, like a live session
        summary = update_summary(summary, turns[start : start + 2], max_sentences=4)
        assert len(summary.splitlines()) <= 4
    assert "My name is Mina and I want to become a data scientist." in summary
    assert summary == update_summary(
        update_summary(
            update_summary(update_summary(update_summary("", turns[0:2], max_sentences=4),
                                          turns[2:4], max_sentences=4),
                           turns[4:6], max_sentences=4),
            turns[6:8], max_sentences=4),
        turns[8:10], max_sentences=4,
    )  # fmt: skip
    # Speaker labels survive the round trip, so mentee facts stay attributed to the mentee.
    assert any(line.startswith("Mentee: My name is Mina") for line in summary.splitlines())


# --------------------------------------------------------------------------------------------
# Context assembly
# --------------------------------------------------------------------------------------------


def test_build_context_layout_with_generous_budget():
    turns = _turns(CONVERSATION)
    facts = facts_from_turns(turns)
    summary = summarise(turns[:4], max_sentences=3)
    ctx = build_context(
        system_prompt=SYSTEM_PROMPT,
        facts=facts,
        summary=summary,
        recent_turns=turns[4:],
        user_message="What should I do this week?",
        budget_tokens=10_000,
    )
    messages, tokens = ctx  # unpacks like a tuple
    assert tokens == messages_tokens(messages)
    assert messages[0]["role"] == "system"
    system = messages[0]["content"]
    assert system.startswith(SYSTEM_PROMPT)
    assert "- Name: Mina" in system and "- Goal: become a data scientist" in system
    assert summary in system
    assert [m["content"] for m in messages[1:-1]] == [t.text for t in turns[4:]]
    assert [m["role"] for m in messages[1:-1]] == [t.role for t in turns[4:]]
    assert messages[-1] == {"role": "user", "content": "What should I do this week?"}


def test_build_context_never_exceeds_budget():
    rng = random.Random(2024)
    facts = {
        "name": Fact("name", "Mina", 0, 0.95),
        "goal": Fact("goal", "become a data scientist", 0, 0.9),
        "preference": Fact("preference", "video courses", 1, 0.7),
    }
    for _ in range(300):
        turns = _random_turns(rng, rng.randint(0, 15))
        summary = summarise(_random_turns(rng, 6), max_sentences=4)
        user_message = _random_text(rng)
        minimum = messages_tokens([{"content": SYSTEM_PROMPT}, {"content": user_message}])
        budget = rng.randint(minimum, minimum + 400)
        ctx = build_context(
            system_prompt=SYSTEM_PROMPT,
            facts=facts,
            summary=summary,
            recent_turns=turns,
            user_message=user_message,
            budget_tokens=budget,
        )
        assert ctx.tokens == messages_tokens(ctx.messages) <= budget
        assert ctx.messages[-1] == {"role": "user", "content": user_message}
        kept = [m["content"] for m in ctx.messages[1:-1]]
        # Oldest turns go first: what is kept is a suffix of the recent turns, in order.
        assert kept == [t.text for t in turns[len(turns) - len(kept) :]]
        # The summary is only touched once every recent turn is gone.
        if kept:
            assert summary in ctx.messages[0]["content"]


def test_build_context_shortens_summary_before_dropping_facts():
    turns = _turns(CONVERSATION)
    facts = facts_from_turns(turns)
    summary = summarise(turns, max_sentences=6)
    common = {
        "system_prompt": SYSTEM_PROMPT,
        "facts": facts,
        "summary": summary,
        "recent_turns": turns[-2:],
        "user_message": "Thanks!",
    }
    full = build_context(**common, budget_tokens=10_000)
    without_turns = full.tokens - sum(message_tokens(t.text) for t in turns[-2:])
    ctx = build_context(**common, budget_tokens=without_turns - 10)
    system = ctx.messages[0]["content"]
    assert len(ctx.messages) == 2  # system + user: both recent turns dropped
    assert "Summary of the earlier conversation:" in system
    assert summary not in system  # shortened...
    assert "- Name: Mina" in system  # ...while the facts are intact
    assert ctx.tokens <= without_turns - 10


def test_build_context_raises_when_prompt_and_message_cannot_fit():
    with pytest.raises(ContextBudgetError):
        build_context(
            system_prompt=SYSTEM_PROMPT,
            facts={},
            summary="",
            recent_turns=[],
            user_message="x " * 50,
            budget_tokens=20,
        )


def test_fact_from_turn_two_survives_to_turn_nine_under_a_small_budget():
    """Facts are carried separately, so they outlive the verbatim turn that stated them."""
    turns = _turns(CONVERSATION)
    facts: dict[str, Fact] = {}
    summary = ""
    window = 3  # turns kept verbatim in the live session; older ones fold into the summary
    for i, turn in enumerate(turns[:9]):  # turns 0..8: turn 8 is the message being answered
        facts = merge_facts(facts, extract_facts(turn))
        if i >= window:
            summary = update_summary(summary, [turns[i - window]], max_sentences=3)
    turn_two, user_message = turns[2].text, turns[8].text
    assert turn_two in summary  # the rolling summary did keep it, as a fact-bearing sentence

    # Budget: the prompt, the facts and the new message, plus less than turn 2 itself costs.
    core = build_context(
        system_prompt=SYSTEM_PROMPT,
        facts=facts,
        summary="",
        recent_turns=[],
        user_message=user_message,
        budget_tokens=10_000,
    ).tokens
    budget = core + count_tokens(turn_two) - 1
    assert budget < core + message_tokens(turn_two)  # turn 2 verbatim cannot fit

    ctx = build_context(
        system_prompt=SYSTEM_PROMPT,
        facts=facts,
        summary=summary,
        recent_turns=turns[:8],  # everything so far: build_context must drop what does not fit
        user_message=user_message,
        budget_tokens=budget,
    )
    assert ctx.tokens <= budget
    everything = "\n".join(m["content"] for m in ctx.messages)
    assert turn_two not in everything  # the turn itself is gone, from turns and summary alike...
    system = ctx.messages[0]["content"]
    assert "- Name: Mina" in system  # ...but what it told us is still there
    assert "- Goal: become a data scientist" in system
    assert ctx.messages[-1] == {"role": "user", "content": user_message}
