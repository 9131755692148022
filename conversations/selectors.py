"""Reads of the conversations app."""

from __future__ import annotations

from django.db.models import QuerySet

from common.errors import DomainError
from conversations.models import ConversationSession, MemoryFact, Summary, Turn


def get_session(*, session_id: int, user_id: str) -> ConversationSession:
    """The mentee's session; another user's answers like a missing one (not_found)."""
    session = ConversationSession.objects.filter(id=session_id, user_id=user_id).first()
    if session is None:
        raise DomainError(f"Unknown conversation session {session_id}.", code="not_found")
    return session


def session_turns(session: ConversationSession) -> QuerySet[Turn]:
    return Turn.objects.filter(session=session).order_by("index")


def session_summary(session: ConversationSession) -> Summary | None:
    return Summary.objects.filter(session=session).first()


def user_facts(*, user_id: str) -> QuerySet[MemoryFact]:
    """The mentee's facts with the turn each came from (one query)."""
    return MemoryFact.objects.filter(user_id=user_id).select_related("source_turn").order_by("key")
