"""Mentor backed by any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, ...).

Standard library only (``urllib.request``).  Transient failures - connection errors, timeouts,
HTTP 429 and 5xx - are retried with exponential backoff; other 4xx responses are not, because
resending the same request cannot fix them.  Every failure surfaces as ``ResponderError`` with
a message safe to show the mentee and the technical cause kept in ``detail`` for logs.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conversations.memory import count_tokens, messages_tokens
from conversations.responders.base import UNAVAILABLE_MESSAGE, Reply, ResponderError

logger = logging.getLogger(__name__)

#: Shown when the backend rejects the request itself (too long, invalid): rephrasing may help.
REJECTED_MESSAGE = (
    "The mentor couldn't process that message. Please try rephrasing or shortening it."
)

# 400 / 413 / 422 usually mean "this input" (e.g. context too long); 401 / 403 / 404 mean our
# configuration is wrong, which the mentee cannot fix, so they get the "unavailable" message.
_INPUT_REJECTED_STATUSES = frozenset({400, 413, 422})
_ERROR_BODY_LOG_CHARS = 500

_SUMMARY_PROMPT = (
    "You summarise mentoring conversations for the mentor's memory. Write at most {n} short "
    "sentences in the third person ('The mentee ...'). Keep every fact the mentee stated about "
    "themself (name, goals, field, level, years of experience, learning preferences), their open "
    "questions and any agreed next steps. Reply with the summary only."
)


class _TransientError(Exception):
    """Internal: a failure worth retrying."""

    def __init__(self, detail: str, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after_s = retry_after_s


class ChatCompletionsResponder:
    """``Responder`` calling ``POST {base_url}/chat/completions``.

    ``base_url`` is the API root including any version prefix (e.g. ``https://llm.example.com/v1``
    or ``http://localhost:11434/v1``) and must be http(s).  ``api_key`` is sent as a Bearer token
    (omitted when empty, for local servers that need none).  ``timeout_s`` bounds connecting and
    each read of the socket (not the total wall time of a slowly streamed body).

    A request is attempted at most ``1 + max_retries`` times.  Before retry ``n`` (0-based) it
    waits ``backoff_s * 2**n`` seconds, or the server's numeric ``Retry-After`` when that is
    longer, never more than ``max_backoff_s`` (callers are usually serving a web request).
    Malformed success responses are not retried: a server answering garbage once usually keeps
    doing so.  ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        *,
        temperature: float = 0.7,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        # urlopen also speaks file:// and ftp://; only ever let it reach an HTTP API.
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError("need max_retries >= 0, timeout_s > 0 and backoff_s >= 0")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.temperature = temperature
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self.backend = f"openai-compat:{model}"

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r})"

    def respond(self, messages: Sequence[Mapping[str, str]], *, facts: Mapping[str, str]) -> Reply:
        """Send ``messages`` and return the model's reply.

        ``facts`` is accepted for the ``Responder`` protocol but not sent separately: the context
        built by ``conversations.memory.build_context`` already carries them in the system
        message, and sending them twice would waste tokens.
        """
        return self._complete(messages, temperature=self.temperature)

    def summarise(self, text: str, *, max_sentences: int = 5) -> str:
        """Ask the backend for a short third-person summary of ``text`` (a conversation).

        Used for rolling summaries when an LLM is configured; temperature 0 keeps it as stable as
        the backend allows.  Raises ``ResponderError`` like ``respond``.
        """
        messages = [
            {"role": "system", "content": _SUMMARY_PROMPT.format(n=max_sentences)},
            {"role": "user", "content": text},
        ]
        return self._complete(messages, temperature=0.0).text

    # ---------------------------------------------------------------------------------------

    def _complete(self, messages: Sequence[Mapping[str, str]], *, temperature: float) -> Reply:
        payload = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": temperature,
        }
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        attempts = self.max_retries + 1
        last: _TransientError | None = None
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._delay(attempt - 1, last))
            try:
                raw = self._post(body, attempt + 1)
            except _TransientError as exc:
                last = exc
                logger.warning(
                    "chat-completions attempt %d/%d to %s failed: %s",
                    attempt + 1, attempts, self.base_url, exc.detail,
                )  # fmt: skip
                continue
            return self._parse(raw, messages, attempt + 1)
        assert last is not None  # the loop ran at least once and every pass failed
        raise ResponderError(
            UNAVAILABLE_MESSAGE,
            detail=f"gave up after {attempts} attempt(s): {last.detail}",
            attempts=attempts,
            status=last.status,
        ) from last

    def _delay(self, retry: int, failure: _TransientError | None) -> float:
        delay = self.backoff_s * 2.0**retry
        if failure is not None and failure.retry_after_s is not None:
            delay = max(delay, failure.retry_after_s)
        return min(delay, self.max_backoff_s)

    def _post(self, body: bytes, attempt: int) -> bytes:
        """One HTTP attempt: the response body, or ``_TransientError`` / ``ResponderError``."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.base_url}/chat/completions"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked in __init__
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - scheme checked in __init__
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:  # before URLError: it is a subclass
            status = exc.code
            detail = f"HTTP {status} from {url}: {_error_body(exc)}"
            if status == 429 or status >= 500:
                raise _TransientError(
                    detail, status, _retry_after(exc.headers.get("Retry-After"))
                ) from exc
            message = (
                REJECTED_MESSAGE if status in _INPUT_REJECTED_STATUSES else UNAVAILABLE_MESSAGE
            )
            raise ResponderError(message, detail=detail, attempts=attempt, status=status) from exc
        except (OSError, http.client.HTTPException) as exc:
            # OSError covers URLError (refused, DNS), TimeoutError and connection resets;
            # HTTPException covers truncated or garbled HTTP framing.
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise _TransientError(f"{type(reason).__name__}: {reason} ({url})") from exc

    def _parse(self, raw: bytes, messages: Sequence[Mapping[str, str]], attempt: int) -> Reply:
        def malformed(why: str) -> ResponderError:
            return ResponderError(
                UNAVAILABLE_MESSAGE,
                detail=f"malformed chat-completions response ({why}): {raw[:200]!r}",
                attempts=attempt,
                status=200,
            )

        try:
            payload: Any = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise malformed("invalid JSON") from exc
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise malformed("no choices[0].message.content") from exc
        if not isinstance(content, str) or not content.strip():
            raise malformed("empty content")
        text = content.strip()
        usage = payload.get("usage") if isinstance(payload, dict) else None
        total = usage.get("total_tokens") if isinstance(usage, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            # Some compatible servers omit usage; estimate rather than report zero cost.
            total = messages_tokens(messages) + count_tokens(text)
        return Reply(text=text, tokens=total, backend=self.backend)


def _error_body(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(_ERROR_BODY_LOG_CHARS).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return "<unreadable body>"
    finally:
        exc.close()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a numeric ``Retry-After`` header value (the HTTP-date form is ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
