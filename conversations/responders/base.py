"""The contract every mentor backend implements.

A responder turns chat messages (as built by ``conversations.memory.build_context``) into one
mentor reply.  Callers depend only on ``Responder``, ``Reply`` and ``ResponderError`` so that
the offline knowledge base and any OpenAI-compatible server are interchangeable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Shown to the mentee when a backend cannot answer right now (it is not their fault, so the
#: message invites a retry and reveals nothing technical).
UNAVAILABLE_MESSAGE = "The mentor is temporarily unavailable, please try again in a minute."


@dataclass(frozen=True, slots=True)
class Reply:
    """One mentor reply.

    ``text`` is the answer to show; ``tokens`` is the total tokens spent for it (prompt plus
    completion: reported by the backend when it can, otherwise estimated with
    ``conversations.memory.count_tokens``); ``backend`` names the backend that produced it
    (e.g. ``"offline-kb"`` or ``"openai-compat:<model>"``), for logs and analytics.
    """

    text: str
    tokens: int
    backend: str


class ResponderError(Exception):
    """A responder could not produce a reply.

    ``user_message`` is safe to show to the mentee and is also ``str(error)``, so a view that
    naively renders the exception leaks nothing.  ``detail`` is the technical cause (status
    codes, exception text) for logs only; ``attempts`` is how many requests were made and
    ``status`` the last HTTP status, if any.
    """

    def __init__(
        self,
        user_message: str = UNAVAILABLE_MESSAGE,
        *,
        detail: str = "",
        attempts: int = 0,
        status: int | None = None,
    ) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.detail = detail
        self.attempts = attempts
        self.status = status

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(user_message={self.user_message!r}, detail={self.detail!r}, "
            f"attempts={self.attempts}, status={self.status})"
        )


@runtime_checkable
class Responder(Protocol):
    """Something that answers a mentee.

    ``messages`` are ``{"role": "system" | "user" | "assistant", "content": str}`` dicts in
    chronological order, the last one being the mentee's new message.  ``facts`` are the
    remembered facts about the mentee as ``{key: value}`` (see ``conversations.memory.FACT_KEYS``);
    backends that receive them inside the system message may ignore this argument.

    Implementations return a ``Reply`` or raise ``ResponderError``; they never raise anything
    else for backend failures, so callers need a single except clause.
    """

    def respond(
        self, messages: Sequence[Mapping[str, str]], *, facts: Mapping[str, str]
    ) -> Reply: ...


def last_user_message(messages: Sequence[Mapping[str, str]]) -> str:
    """Content of the last ``user`` message, or ``""`` if there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""
