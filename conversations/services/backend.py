"""Which responder answers: the OpenAI-compatible backend when ``settings.LLM_BASE_URL`` is
set, otherwise the offline knowledge-base mentor. Also the summariser that goes with it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings

from conversations.engine import Summariser, extractive_summariser, render_for_summary
from conversations.memory import TurnView
from conversations.responders.base import Responder, ResponderError
from conversations.responders.offline import KnowledgeBaseResponder
from conversations.responders.openai_compat import ChatCompletionsResponder

logger = logging.getLogger(__name__)

SUMMARY_MAX_SENTENCES = 8
SUMMARY_MAX_TOKENS = 300


@lru_cache(maxsize=1)
def offline_responder() -> KnowledgeBaseResponder:
    """One per process: loading the knowledge base and its TF-IDF vectors takes a while."""
    return KnowledgeBaseResponder()


@lru_cache(maxsize=8)
def _http_responder(
    base_url: str, api_key: str, model: str, timeout_s: float, max_retries: int, backoff_s: float
) -> ChatCompletionsResponder:
    return ChatCompletionsResponder(
        base_url,
        api_key,
        model,
        timeout_s=timeout_s,
        max_retries=max_retries,
        backoff_s=backoff_s,
    )


def configured_responder() -> Responder:
    """The v2 responder as configured now (read per call, so a settings change applies)."""
    if not settings.LLM_BASE_URL:
        return offline_responder()
    return _http_responder(
        settings.LLM_BASE_URL,
        settings.LLM_API_KEY,
        settings.LLM_MODEL,
        float(settings.LLM_TIMEOUT_SECONDS),
        settings.LLM_MAX_RETRIES,
        settings.LLM_BACKOFF_SECONDS,
    )


def summariser_for(responder: Responder) -> Summariser:
    """Extractive by default; the LLM's own summary when the responder can write one, with
    the extractive summary as the fallback when the backend fails (a failed summary must
    not fail the mentee's turn)."""
    extractive = extractive_summariser(
        max_sentences=SUMMARY_MAX_SENTENCES, max_tokens=SUMMARY_MAX_TOKENS
    )
    if not isinstance(responder, ChatCompletionsResponder):
        return extractive

    def summarise(previous: str, turns: Sequence[TurnView]) -> str:
        try:
            return responder.summarise(
                render_for_summary(previous, turns), max_sentences=SUMMARY_MAX_SENTENCES
            )
        except ResponderError as exc:
            logger.warning("LLM summary failed, using the extractive one: %s", exc.detail)
            return extractive(previous, turns)

    return summarise
