"""Rollout notifications: render one ``Message`` for Slack, a pager or email, and deliver it.

Events (``Message.event``): ``rollback``, ``transition_requested``, ``transition_approved``,
``transition_rejected``, ``transition_invalidated``, ``health_degraded``.

Channels (``deliver(kind, target, message)``):

``slack``
    ``target`` is a Slack-compatible incoming-webhook URL; the body is ``slack_payload``.
``pager``
    ``target`` is a generic pager webhook URL taking PagerDuty-Events-v2-like JSON; the body
    is ``pager_payload``. No ``routing_key`` is sent: the webhook URL identifies the service.
``email``
    ``target`` is one or more comma-separated addresses; one message is sent to all of them
    through Django's configured email backend, from ``settings.DEFAULT_FROM_EMAIL``.

Failure contract: every delivery failure raises ``DeliveryError``. ``retryable`` is True
when the same call may succeed later (429, 5xx, 408, connection errors, timeouts, SMTP
errors) and False when retrying cannot help (bad URL or scheme, other 4xx, redirects,
unknown channel kind, no address). Nothing is retried here: the caller owns the retry
policy (backoff, attempt cap) and uses ``Message.dedup_key`` so receivers can drop repeats.

Webhook URLs are credentials (a Slack webhook URL *is* the token), so no error message
produced here contains more of the URL than its scheme and host.

Standard library and ``django.core.mail`` / ``django.conf`` only: no project models, so the
module is usable from tasks, management commands and tests alike.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException, InvalidURL
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import BadHeaderError, send_mail

Severity = Literal["info", "warning", "critical"]

SEVERITIES: Final = frozenset({"info", "warning", "critical"})
USER_AGENT: Final = "ion-platform-notify/1"
PAGER_SOURCE: Final = "ion-mentoring rollout platform"

# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks): past any of
# these Slack rejects the *whole* message with ``invalid_blocks``, so the notification
# would be lost rather than merely shortened.
SLACK_TEXT_MAX: Final = 3000  # section text, context element text, top-level fallback
SLACK_HEADER_MAX: Final = 150  # header block plain_text
SLACK_FIELD_MAX: Final = 2000  # each section field
SLACK_FIELDS_MAX: Final = 10  # fields per section

# PagerDuty Events v2 limits; other pager receivers copy them.
PAGER_SUMMARY_MAX: Final = 1024
DEDUP_KEY_MAX: Final = 255

EMAIL_SUBJECT_MAX: Final = 200
ERROR_BODY_MAX: Final = 200  # how much of a rejecting receiver's body goes in the error
ELLIPSIS: Final = "…"


@dataclass(frozen=True, kw_only=True)
class Message:
    """One notification, independent of the channel it goes to.

    ``title`` is one line (newlines are collapsed where a channel needs one line);
    ``text`` a few plain-text lines (no markup: channels escape it as they need);
    ``url`` the absolute link to the rollout page, or ``""``; ``fields`` ordered
    name -> value figures such as ``{"error rate": "3.00 %"}``; ``dedup_key`` a stable id
    of the notification (same event of the same rollout -> same key), at most 255
    characters, so receivers (PagerDuty, a caller's outbox) can drop repeats and retries.

    Keyword-only: nine fields of mostly ``str`` are too easy to pass in the wrong order.
    Raises ``ValueError`` on an unknown severity or an empty/too long ``dedup_key``.
    """

    event: str
    severity: Severity
    rollout_key: str
    rollout_name: str
    title: str
    text: str
    url: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    dedup_key: str

    def __post_init__(self) -> None:
        # Validated here, once, rather than in each renderer: a bad severity would make
        # the pager receiver reject the event (400) only at delivery time.
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {sorted(SEVERITIES)}: {self.severity!r}")
        if not self.dedup_key or len(self.dedup_key) > DEDUP_KEY_MAX:
            # Truncating would silently merge distinct notifications; refuse instead.
            raise ValueError(f"dedup_key must have 1 to {DEDUP_KEY_MAX} characters")


class DeliveryError(Exception):
    """A notification could not be delivered.

    ``retryable``: whether the same delivery may succeed if attempted again later.
    ``retry_after_s``: the receiver's ``Retry-After`` (seconds) when it sent one, else None.
    ``str(error)`` is safe to log: it never contains a webhook URL's path or query.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


# -- rendering -------------------------------------------------------------------------------


def _truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking a cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _one_line(text: str) -> str:
    return " ".join(text.split())


_SLACK_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _slack_escape(text: str, limit: int) -> str:
    """``text`` escaped for Slack mrkdwn and cut to ``limit`` characters *after* escaping.

    Escaping matters beyond looks: an unescaped ``<!channel>`` in a rollout name or a
    reason would ping the whole channel. The cut is made on the raw text so an entity such
    as ``&amp;`` is never split.
    """
    escaped = "".join(_SLACK_ESCAPES.get(char, char) for char in text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    budget = limit - len(ELLIPSIS)
    for char in text:
        piece = _SLACK_ESCAPES.get(char, char)
        if size + len(piece) > budget:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + ELLIPSIS


def _header_text(message: Message) -> str:
    # A header's text may not be empty; fall back on something that still says what happened.
    title = _one_line(message.title) or f"{message.event}: {message.rollout_name}"
    return _truncate(title, SLACK_HEADER_MAX)


def slack_payload(message: Message) -> dict[str, Any]:
    """Slack incoming-webhook JSON for ``message``, within Block Kit limits.

    ``text`` is the one-line title (what notifications and screen readers show);
    ``blocks`` are a header (title, 150 chars), a section with ``text`` (3000 chars, only
    when non-empty), a section of at most 10 ``*name*\\nvalue`` fields (only when there are
    fields) and a context with severity, event, rollout and, when ``url`` is set, a link.
    Fields beyond the tenth are dropped and counted in the context. User-supplied text is
    escaped (``&``, ``<``, ``>``) wherever it is rendered as mrkdwn.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _header_text(message)}}
    ]
    if message.text.strip():
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _slack_escape(message.text, SLACK_TEXT_MAX)},
            }
        )
    items = list(message.fields.items())
    if items:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _slack_escape(f"*{name}*\n{value}", SLACK_FIELD_MAX),
                    }
                    for name, value in items[:SLACK_FIELDS_MAX]
                ],
            }
        )
    context = (
        f"*{message.severity}* · {_slack_escape(message.event, 100)} · rollout "
        f"{_slack_escape(message.rollout_name, 500)} (`{_slack_escape(message.rollout_key, 200)}`)"
    )
    dropped = len(items) - SLACK_FIELDS_MAX
    if dropped > 0:
        context += f" · {dropped} more figure{'s' if dropped > 1 else ''} not shown"
    elements: list[dict[str, Any]] = [{"type": "mrkdwn", "text": context}]
    if message.url:
        # A mrkdwn link rather than a button: Slack rejects the whole message when a
        # button's url is invalid, whereas a bad link only renders as text. The URL is
        # escaped like any text, as Slack's link syntax requires (``&`` -> ``&amp;``).
        link = _slack_escape(message.url, SLACK_TEXT_MAX - 20).replace("|", "%7C")
        elements.append({"type": "mrkdwn", "text": f"<{link}|Open rollout>"})
    blocks.append({"type": "context", "elements": elements})
    return {"text": _slack_escape(_one_line(message.title), SLACK_TEXT_MAX), "blocks": blocks}


def pager_payload(message: Message) -> dict[str, Any]:
    """PagerDuty-Events-v2-like JSON for ``message``: always a ``trigger`` event.

    ``dedup_key`` is the message's, so repeated triggers of the same notification update one
    incident instead of opening new ones. ``payload.summary`` is the one-line title (1024
    chars), ``severity`` the message's (info / warning / critical are all valid Events v2
    severities), ``component`` the rollout key, ``custom_details`` the fields plus the
    ``text`` (under ``"text"``, or ``"message text"`` if a field is already named ``text``).
    ``links`` holds the rollout page when ``url`` is set.
    """
    details: dict[str, str] = dict(message.fields)
    details["message text" if "text" in details else "text"] = message.text
    body: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": message.dedup_key,
        "payload": {
            "summary": _truncate(_one_line(message.title) or message.event, PAGER_SUMMARY_MAX),
            "severity": message.severity,
            "source": PAGER_SOURCE,
            "component": message.rollout_key,
            "custom_details": details,
        },
    }
    if message.url:
        body["links"] = [{"href": message.url, "text": "Rollout"}]
    return body


def email_parts(message: Message) -> tuple[str, str]:
    """``(subject, body)`` of the plain-text email for ``message``.

    The subject is one line (Django refuses newlines in headers) of at most 200 characters:
    ``[ion rollout] [SEVERITY] title``. The body is the text, the fields as ``name: value``
    lines, the link when set, and the event / rollout / dedup key for reference.
    """
    subject = _truncate(
        _one_line(f"[ion rollout] [{message.severity.upper()}] {message.title}"),
        EMAIL_SUBJECT_MAX,
    )
    parts: list[str] = []
    if message.text.strip():
        parts.append(message.text.strip())
    if message.fields:
        width = max(len(name) for name in message.fields)
        parts.append(
            "\n".join(
                f"{name + ':':<{width + 1}} {value}" for name, value in message.fields.items()
            )
        )
    if message.url:
        parts.append(f"Rollout: {message.url}")
    parts.append(
        f"-- \nEvent {message.event} on rollout {message.rollout_name} ({message.rollout_key}), "
        f"severity {message.severity}.\nNotification id: {message.dedup_key}"
    )
    return subject, "\n\n".join(parts) + "\n"


# -- delivery --------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuses redirects, so a 3xx surfaces as an ``HTTPError``.

    urllib would follow a 301/302/303 to a POST as a body-less GET: the notification would
    be silently dropped while the call "succeeds". A webhook that redirects is misconfigured.
    """

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER: Final = urllib.request.build_opener(_NoRedirect)


def _safe_origin(url: str) -> str:
    """Scheme and host of ``url`` only: the path and query of a webhook URL are its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" if parts.scheme else "(invalid URL)"


def _retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form; the HTTP-date form is rare on webhooks and the caller's
    # own backoff is an acceptable fallback.
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def post_json(url: str, payload: dict[str, Any], *, timeout_s: float = 5.0) -> int:
    """POST ``payload`` as JSON to the http(s) ``url``; return the 2xx status.

    Sends ``Content-Type: application/json`` and ``User-Agent: ion-platform-notify/1``;
    follows no redirects. ``timeout_s`` bounds each socket operation (connect, send, each
    read), not the whole exchange.

    Raises ``DeliveryError``: not retryable for a non-http(s) or host-less URL, a 3xx or a
    4xx other than 408/429 (the message holds the status and up to 200 characters of the
    body); retryable for 408, 429 (with ``retry_after_s`` from ``Retry-After``), 5xx,
    connection errors and timeouts.
    """
    parts = urlsplit(url)
    # Checked before urllib sees the URL: urlopen also accepts file:// and ftp://, which
    # would let whoever configures a channel read local files or reach other services.
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise DeliveryError(
            f"refusing to post to {_safe_origin(url)}: only http(s) URLs with a host",
            retryable=False,
        )
    origin = _safe_origin(url)
    request = urllib.request.Request(  # noqa: S310 -- scheme checked above: http(s) only
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            # Drain a little so the connection closes cleanly; the content is irrelevant.
            response.read(ERROR_BODY_MAX)
            return int(response.status)
    except urllib.error.HTTPError as error:
        # HTTPError is a URLError subclass: handled first, as it carries the status.
        status = error.code
        try:
            raw = error.read(ERROR_BODY_MAX * 4)
        except (OSError, HTTPException):
            raw = b""
        finally:
            error.close()
        snippet = _truncate(_one_line(raw.decode("utf-8", "replace")), ERROR_BODY_MAX)
        retryable = status in (408, 429) or status >= 500
        retry_after = _retry_after(error.headers.get("Retry-After")) if retryable else None
        raise DeliveryError(
            f"{origin} answered HTTP {status}" + (f": {snippet}" if snippet else ""),
            retryable=retryable,
            retry_after_s=retry_after,
        ) from None
    except InvalidURL:
        # Control characters or a bad port in the URL: a configuration error, not transient.
        # The exception's own text quotes the whole URL, hence not reused.
        raise DeliveryError(f"invalid URL for {origin}", retryable=False) from None
    except urllib.error.URLError as error:
        # Refused connection, DNS failure, TLS failure, timeout while connecting/sending.
        raise DeliveryError(f"could not reach {origin}: {error.reason}", retryable=True) from None
    except (OSError, HTTPException) as error:
        # Timeout or reset while waiting for the response (urllib does not wrap these).
        reason = "timed out" if isinstance(error, TimeoutError) else repr(error)
        raise DeliveryError(f"no response from {origin}: {reason}", retryable=True) from None


def _send_email(target: str, message: Message) -> None:
    recipients = [address.strip() for address in target.split(",") if address.strip()]
    if not recipients:
        raise DeliveryError("email channel has no address", retryable=False)
    subject, body = email_parts(message)
    try:
        # One message to all recipients, i.e. one SMTP transaction that is accepted or fails
        # as a whole: a retry then never resends to addresses that already received it,
        # as one message per address after a partial failure would.
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    except BadHeaderError as error:
        # A newline smuggled into an address: the configuration must be fixed.
        raise DeliveryError(f"invalid email header: {error}", retryable=False) from None
    except (smtplib.SMTPException, OSError) as error:
        # OSError covers a refused or timed-out SMTP connection.
        raise DeliveryError(f"email not sent: {error!r}", retryable=True) from None


def deliver(kind: str, target: str, message: Message) -> None:
    """Deliver ``message`` on a channel of ``kind`` (``slack``, ``pager``, ``email``).

    ``target`` is the webhook URL (slack, pager) or the comma-separated addresses (email).
    Returns on success; raises ``DeliveryError`` otherwise (see the module docstring),
    including for an unknown ``kind`` (not retryable).
    """
    if kind == "slack":
        post_json(target, slack_payload(message))
    elif kind == "pager":
        post_json(target, pager_payload(message))
    elif kind == "email":
        _send_email(target, message)
    else:
        raise DeliveryError(f"unknown channel kind {kind!r}", retryable=False)
