"""Planning one v2 turn: which memory goes into the prompt and what rolls into the summary.

Pure (no Django, no I/O): the service loads the facts, the rolling summary and the turns not
yet summarised, calls ``plan_turn``, then stores what it returns.

Budget split. The whole context (system prompt + facts + summary + recent turns + the new
message) must fit ``budget_tokens``; ``conversations.memory.build_context`` guarantees that.
To keep the summary from squeezing the recent turns unpredictably, the recent window is sized
as if the summary already had its maximum size (``summary_max_tokens``).

Hysteresis. When the unsummarised turns no longer fit the window, we do not fold just the one
or two turns that overflow: we fold until the window is down to ``keep_ratio`` of its budget.
The next few turns then fit without another roll, so an LLM summariser is called every few
turns instead of on every turn, and the extractive one does less work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from conversations.memory import (
    Context,
    Fact,
    TurnView,
    build_context,
    count_tokens,
    select_recent,
    update_summary,
)

#: What a summariser gets: the previous summary and the turns to fold into it, oldest first.
Summariser = Callable[[str, Sequence[TurnView]], str]

# "Summary of the earlier conversation:" costs 7 estimated tokens; round up.
_SUMMARY_HEADER_TOKENS = 8


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """``context`` goes to the responder. ``window`` are the recent turns in it verbatim.
    When ``folded`` is non-empty, those turns were rolled into ``summary`` and the stored
    summary must become ``summary`` covering up to ``folded[-1].index``."""

    context: Context
    window: list[TurnView]
    folded: list[TurnView]
    summary: str

    @property
    def summary_changed(self) -> bool:
        return bool(self.folded)

    @property
    def summary_up_to(self) -> int | None:
        return self.folded[-1].index if self.folded else None


def extractive_summariser(*, max_sentences: int, max_tokens: int) -> Summariser:
    """The default summariser: ``memory.update_summary`` with these limits."""

    def summarise(previous: str, turns: Sequence[TurnView]) -> str:
        return update_summary(previous, turns, max_sentences=max_sentences, max_tokens=max_tokens)

    return summarise


def cap_summary(text: str, max_tokens: int) -> str:
    """``text`` if it fits ``max_tokens``, else its most important sentences that do (for
    summaries written by an LLM, which may ignore the length we asked for)."""
    text = text.strip()
    if count_tokens(text) <= max_tokens:
        return text
    return update_summary(text, [], max_sentences=None, max_tokens=max_tokens)


def plan_turn(
    *,
    system_prompt: str,
    facts: Mapping[str, Fact],
    summary: str,
    unsummarised: Sequence[TurnView],
    user_message: str,
    budget_tokens: int,
    summary_max_tokens: int,
    keep_ratio: float,
    summarise: Summariser,
) -> TurnPlan:
    """Plan the context of one turn; see the module docstring.

    ``unsummarised`` are the usable turns after the summary, oldest first, without the new
    message. Raises ``memory.ContextBudgetError`` when the system prompt and the message alone
    exceed the budget. Guarantee: ``plan.context.tokens <= budget_tokens``.
    """
    if not 0 < keep_ratio <= 1:
        raise ValueError("keep_ratio must be within (0, 1]")
    turns = list(unsummarised)
    base = build_context(
        system_prompt=system_prompt,
        facts=facts,
        summary=summary,
        recent_turns=[],
        user_message=user_message,
        budget_tokens=budget_tokens,
    ).tokens
    growth = max(0, summary_max_tokens - count_tokens(summary))
    if not summary.strip():
        growth += _SUMMARY_HEADER_TOKENS
    window_budget = max(0, budget_tokens - base - growth)

    if _fits(turns, window_budget):
        window, folded, new_summary = turns, [], summary
    else:
        window = select_recent(turns, int(window_budget * keep_ratio))
        folded = turns[: len(turns) - len(window)]
        new_summary = cap_summary(summarise(summary, folded), summary_max_tokens)

    context = build_context(
        system_prompt=system_prompt,
        facts=facts,
        summary=new_summary,
        recent_turns=window,
        user_message=user_message,
        budget_tokens=budget_tokens,
    )
    return TurnPlan(context=context, window=window, folded=folded, summary=new_summary)


def _fits(turns: Sequence[TurnView], budget: int) -> bool:
    return len(select_recent(turns, budget)) == len(turns)


def render_for_summary(previous: str, turns: Sequence[TurnView]) -> str:
    """The text an LLM summariser gets: the previous summary, then the turns labelled the
    way ``memory.summarise`` labels them (so a fallback can parse it)."""
    labels = {"user": "Mentee", "assistant": "Mentor"}
    lines = [f"Summary so far:\n{previous.strip()}"] if previous.strip() else []
    lines.extend(f"{labels[t.role]}: {' '.join(t.text.split())}" for t in turns)
    return "\n".join(lines)
