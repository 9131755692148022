"""Long-term memory in the database: the facts kept about a mentee across sessions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from conversations.memory import Fact
from conversations.models import ConversationSession, MemoryFact, Summary, Turn


def load_facts(*, user_id: str) -> dict[str, Fact]:
    """The mentee's facts as the memory layer sees them. ``source_turn`` is left out on
    purpose: turn indexes restart in every session, so comparing them across sessions (as
    ``memory.merge_facts`` does) would let an old session's turn 8 beat today's turn 2."""
    rows = MemoryFact.objects.filter(user_id=user_id).values_list("key", "value", "confidence")
    return {key: Fact(key, value, None, confidence) for key, value, confidence in rows}  # type: ignore[arg-type]


def remember_facts(*, user_id: str, facts: Iterable[Fact], turn: Turn, now: datetime) -> int:
    """Upsert facts stated in ``turn``: the newest statement wins, whatever its confidence
    (people change goals). One statement per key, atomic even when two sessions of the same
    mentee write at once (INSERT … ON CONFLICT DO UPDATE). Returns how many were written."""
    rows = [
        MemoryFact(
            user_id=user_id,
            key=fact.key,
            value=fact.value[: MemoryFact._meta.get_field("value").max_length],
            source_turn=turn,
            confidence=fact.confidence,
            updated_at=now,
        )
        for fact in facts
    ]
    if rows:
        MemoryFact.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user_id", "key"],
            update_fields=["value", "source_turn", "confidence", "updated_at"],
        )
    return len(rows)


def delete_user_memory(*, user_id: str, now: datetime | None = None) -> int:
    """Forget what the mentor remembers about a mentee: the facts are deleted, and the
    rolling summaries of their sessions are emptied too, because a summary quotes the
    mentee ("My name is Mina ...") and would carry the facts on into the next prompt. The
    summaries keep their position, so the forgotten turns are not summarised again. The
    transcript (turns) stays: it is the conversation, not the memory. Returns how many facts
    were deleted (0 is fine: deleting twice is not an error)."""
    now = now or timezone.now()
    with transaction.atomic():
        deleted, _ = MemoryFact.objects.filter(user_id=user_id).delete()
        Summary.objects.filter(
            session__in=ConversationSession.objects.filter(user_id=user_id)
        ).update(text="", updated_at=now)
    return deleted
