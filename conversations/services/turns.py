"""One exchange: the mentee's message in, the mentor's reply out.

v2 (canary): the prompt is built from memory (the mentee's facts, the session's rolling
summary and the recent turns within the token budget), the facts stated in the message are
remembered (with the turn they came from), and turns that no longer fit roll into the
summary. v1 (stable): single turn, no memory: the offline mentor sees only this message.

Three steps, so that no database transaction (and no row lock; on SQLite no database-wide
write lock) is held while a responder runs, which for an HTTP backend can take seconds:

1. locked: check the session, reserve two consecutive turn indexes (the message's and its
   reply's), store the message, remember its facts, read the memory;
2. no transaction: plan the context (maybe summarising) and call the responder;
3. store the reply at its reserved index, and the new summary if nobody rolled it meanwhile.

Two messages sent at once therefore get consecutive, ordered indexes (the row lock in step 1
serialises the reservation); the second one's prompt may lack the first one's reply, if that
was still being written. When the backend fails, the reply is the responder's friendly
message, stored and marked ``degraded``: the transcript stays complete and in order, the
mentee sees why there is no answer, and degraded turns are never fed back into a prompt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from common import metrics
from common.errors import DomainError
from conversations.engine import TurnPlan, plan_turn
from conversations.memory import (
    Fact,
    TurnView,
    count_tokens,
    extract_facts,
    fact_values,
    message_tokens,
    messages_tokens,
)
from conversations.models import ConversationSession, Summary, Turn
from conversations.responders.base import UNAVAILABLE_MESSAGE, Responder, ResponderError
from conversations.services import backend, memory_store
from conversations.services.sessions import expire_locked_session, expired_error, is_idle
from conversations.services.sessions import lock_session as _lock

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are ion, a warm and practical career mentor for people working in or moving into "
    "tech. Answer in the mentee's language. Use what you know about the mentee, give concrete "
    "next steps, and keep answers short unless asked for detail."
)
CONTEXT_BUDGET_TOKENS = 1_500
# After a roll the recent window keeps this share of its budget (see conversations.engine).
KEEP_RATIO = 0.6
MAX_MESSAGE_CHARS = 4_000
# 4 000 characters of English are ~1 150 estimated tokens, of Hangul ~4 000: a message must
# leave room in the budget for the system prompt and some memory (at least ~230 tokens of the
# 1 500), so its size is limited in tokens as well.
MAX_MESSAGE_TOKENS = 1_200

Version = ConversationSession.Version


@dataclass(frozen=True, slots=True)
class MessageResult:
    session_id: int
    version: str  # the version that served this message
    message: Turn
    reply: Turn


@dataclass(frozen=True, slots=True)
class _Prepared:
    session: ConversationSession
    version: str
    message: Turn
    facts: dict[str, Fact]
    summary: str
    summary_up_to: int | None
    unsummarised: list[TurnView]


def validate_message(text: str, *, budget_tokens: int = CONTEXT_BUDGET_TOKENS) -> str:
    """The message, stripped, or DomainError (invalid, field ``text``)."""
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise DomainError("The message must not be empty.", field="text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise DomainError(
            f"The message is too long: at most {MAX_MESSAGE_CHARS} characters (got {len(text)}).",
            field="text",
        )
    tokens = count_tokens(text)
    limit = min(MAX_MESSAGE_TOKENS, budget_tokens - message_tokens(SYSTEM_PROMPT) - 4)
    if tokens > limit:
        raise DomainError(
            f"The message is too long: about {tokens} tokens, at most {limit}.", field="text"
        )
    return text


def send_message(
    *,
    session_id: int,
    user_id: str,
    text: str,
    serve_stable: bool = False,
    responder: Responder | None = None,
    budget_tokens: int = CONTEXT_BUDGET_TOKENS,
    now: datetime | None = None,
) -> MessageResult:
    """Store the mentee's message and the mentor's reply; see the module docstring.

    ``serve_stable``: serve v1 whatever the session's version (after a rollback).
    ``responder``: overrides the configured one (benchmarks, tests). ``now``: the time of the
    message (tests move time); by default the clock.

    Errors: empty or too long message → invalid; unknown session or another user's →
    not_found; session ended or expired (also when it idled past the timeout just now) →
    conflict."""
    text = validate_message(text, budget_tokens=budget_tokens)
    fixed_now = now
    now = now or timezone.now()
    prepared = _prepare(
        session_id=session_id, user_id=user_id, text=text, serve_stable=serve_stable, now=now
    )
    if responder is None:
        v2 = prepared.version == Version.CANARY
        responder = backend.configured_responder() if v2 else backend.offline_responder()
    reply = Turn(
        session_id=prepared.session.id,
        index=prepared.message.index + 1,
        role=Turn.Role.ASSISTANT,
        backend=str(getattr(responder, "backend", type(responder).__name__))[:100],
    )
    try:
        plan = _answer(
            prepared, text=text, responder=responder, budget_tokens=budget_tokens, reply=reply
        )
    except Exception:
        # A bug, not a backend failure (those are ResponderError, handled in _answer): the
        # reserved index still gets its turn so the transcript has no hole, then the error
        # propagates and is counted as one by the request metrics.
        reply.text, reply.degraded = UNAVAILABLE_MESSAGE, True
        reply.created_at = fixed_now or timezone.now()
        _store_reply(prepared=prepared, plan=None, turn=reply, now=reply.created_at)
        raise
    reply.created_at = fixed_now or timezone.now()
    _store_reply(prepared=prepared, plan=plan, turn=reply, now=reply.created_at)
    return MessageResult(prepared.session.id, prepared.version, prepared.message, reply)


def _answer(
    prepared: _Prepared, *, text: str, responder: Responder, budget_tokens: int, reply: Turn
) -> TurnPlan | None:
    """Step 2: build the prompt (v2: from memory; v1: the message alone), call the
    responder and fill ``reply``. Returns the v2 plan (None for v1)."""
    plan: TurnPlan | None = None
    if prepared.version == Version.CANARY:
        plan = plan_turn(
            system_prompt=SYSTEM_PROMPT,
            facts=prepared.facts,
            summary=prepared.summary,
            unsummarised=prepared.unsummarised,
            user_message=text,
            budget_tokens=budget_tokens,
            # A fifth of the budget at most, so a small budget still leaves room for turns.
            summary_max_tokens=min(backend.SUMMARY_MAX_TOKENS, budget_tokens // 5),
            keep_ratio=KEEP_RATIO,
            summarise=backend.summariser_for(responder),
        )
        messages, facts = plan.context.messages, fact_values(prepared.facts)
    else:
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ]
        facts = {}
    reply.context_tokens = plan.context.tokens if plan else messages_tokens(messages)

    started = time.perf_counter()
    try:
        answer = responder.respond(messages, facts=facts)
        reply.text, reply.tokens, reply.backend = answer.text, max(0, answer.tokens), answer.backend
    except ResponderError as exc:
        logger.warning(
            "responder failed for session %s (%s attempts): %s",
            prepared.session.id,
            exc.attempts,
            exc.detail,
        )
        reply.text, reply.tokens, reply.degraded = exc.user_message, 0, True
    reply.latency_ms = (time.perf_counter() - started) * 1000
    backend_name = getattr(responder, "backend", "unknown")
    metrics.observe_llm_call(backend_name, seconds=reply.latency_ms / 1000, failed=reply.degraded)
    reply.backend = reply.backend[:100]
    return plan


def _prepare(
    *, session_id: int, user_id: str, text: str, serve_stable: bool, now: datetime
) -> _Prepared:
    """Step 1, in one short transaction under the session's row lock."""
    with transaction.atomic():
        session = _lock(session_id=session_id, user_id=user_id)
        if session.status != ConversationSession.Status.ACTIVE:
            raise DomainError(
                f"Conversation session {session_id} is {session.status}; start a new one.",
                code="conflict",
            )
        if not is_idle(session, now):
            return _reserve_and_read(session, text=text, serve_stable=serve_stable, now=now)
        expire_locked_session(session, now=now)
    raise expired_error(session)  # after the commit, so the expiry is kept


def _reserve_and_read(
    session: ConversationSession, *, text: str, serve_stable: bool, now: datetime
) -> _Prepared:
    version = Version.STABLE if serve_stable else session.version
    index = session.next_turn_index
    message = Turn.objects.create(
        session=session,
        index=index,
        role=Turn.Role.USER,
        text=text,
        created_at=now,
        tokens=count_tokens(text),
    )
    session.next_turn_index = index + 2  # this message and its reply
    session.last_activity_at = max(session.last_activity_at, now)
    changed = ["next_turn_index", "last_activity_at"]
    if version != Version.CANARY:
        session.save(update_fields=changed)
        return _Prepared(session, version, message, {}, "", None, [])

    stated = extract_facts(TurnView(index, "user", text))
    memory_store.remember_facts(user_id=session.user_id, facts=stated, turn=message, now=now)
    goal = next((f.value for f in stated if f.key == "goal"), "")
    if goal and not session.goal:
        session.goal = goal[: ConversationSession._meta.get_field("goal").max_length]
        changed.append("goal")
    session.save(update_fields=changed)

    summary = Summary.objects.filter(session=session).values_list("text", "up_to_index").first()
    summary_text, up_to = summary if summary else ("", None)
    turns = Turn.objects.filter(session=session, index__lt=index, degraded=False)
    if up_to is not None:
        turns = turns.filter(index__gt=up_to)
    unsummarised = [
        TurnView(i, role, body)  # type: ignore[arg-type]
        for i, role, body in turns.order_by("index").values_list("index", "role", "text")
    ]
    return _Prepared(
        session=session,
        version=version,
        message=message,
        facts=memory_store.load_facts(user_id=session.user_id),
        summary=summary_text,
        summary_up_to=up_to,
        unsummarised=unsummarised,
    )


def _store_reply(*, prepared: _Prepared, plan: TurnPlan | None, turn: Turn, now: datetime) -> Turn:
    """Step 3. The reply's index was reserved in step 1, so no lock is needed; the summary
    is replaced only if it still covers what it covered when we read it (compare-and-set),
    otherwise a concurrent message rolled it further and ours is dropped."""
    with transaction.atomic():
        turn.save(force_insert=True)
        if plan is not None and plan.summary_up_to is not None:
            if prepared.summary_up_to is None:
                try:
                    with transaction.atomic():
                        Summary.objects.create(
                            session=prepared.session,
                            up_to_index=plan.summary_up_to,
                            text=plan.summary,
                            updated_at=now,
                        )
                except IntegrityError:
                    pass  # a concurrent message created it first; its summary stands
            else:
                Summary.objects.filter(
                    session=prepared.session, up_to_index=prepared.summary_up_to
                ).update(up_to_index=plan.summary_up_to, text=plan.summary, updated_at=now)
    return turn
