"""rollout.notify: payload rendering and delivery against a real local HTTP receiver."""

from __future__ import annotations

import json
import smtplib
import socket
import time
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from rollout.notify import (
    USER_AGENT,
    DeliveryError,
    Message,
    deliver,
    email_parts,
    pager_payload,
    post_json,
    slack_payload,
)
from tests.http_receiver import WEBHOOK_SECRET, Receiver


def make_message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "event": "rollback",
        "severity": "critical",
        "rollout_key": "search-v42",
        "rollout_name": "Search ranking v42",
        "title": "Rollout search-v42 rolled back",
        "text": (
            "Canary error rate 3.00 % exceeds the rollback threshold 1.00 %.\n"
            "Traffic is back on stable."
        ),
        "url": "https://platform.example/rollouts/search-v42/",
        "fields": {"error rate": "3.00 %", "stage": "canary 5 %"},
        "dedup_key": "rollout:search-v42:rollback:7",
    }
    values.update(overrides)
    return Message(**values)


# -- local HTTP receiver ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables; the receiver must be reached directly."""
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


# -- Slack ---------------------------------------------------------------------------------


def test_slack_delivery_posts_block_kit_json(receiver: Receiver) -> None:
    deliver("slack", receiver.url(), make_message())

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.method == "POST"
    assert request.path == f"/services/{WEBHOOK_SECRET}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT == "ion-platform-notify/1"
    body = request.body
    assert body["text"] == "Rollout search-v42 rolled back"
    header, section, fields, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Rollout search-v42 rolled back"},
    }
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].startswith("Canary error rate 3.00 % exceeds")
    assert fields == {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*error rate*\n3.00 %"},
            {"type": "mrkdwn", "text": "*stage*\ncanary 5 %"},
        ],
    }
    assert context["type"] == "context"
    texts = [element["text"] for element in context["elements"]]
    assert "*critical*" in texts[0] and "search-v42" in texts[0]
    assert texts[-1] == "<https://platform.example/rollouts/search-v42/|Open rollout>"


def test_slack_payload_omits_empty_sections_and_link() -> None:
    blocks = slack_payload(make_message(text="  ", fields={}, url=""))["blocks"]

    assert [block["type"] for block in blocks] == ["header", "context"]
    assert len(blocks[1]["elements"]) == 1
    assert "Open rollout" not in json.dumps(blocks)


def test_slack_payload_truncates_texts_to_block_kit_limits() -> None:
    payload = slack_payload(
        make_message(title="T" * 400, text="x" * 10_000, fields={"log": "y" * 5000})
    )

    header, section, fields, _ = payload["blocks"]
    assert len(header["text"]["text"]) == 150
    assert len(section["text"]["text"]) == 3000
    assert section["text"]["text"].endswith("…")
    assert len(fields["fields"][0]["text"]) == 2000
    assert len(payload["text"]) <= 3000


def test_slack_payload_caps_fields_at_ten_and_says_how_many_were_dropped() -> None:
    many = {f"figure {i}": str(i) for i in range(14)}

    blocks = slack_payload(make_message(fields=many))["blocks"]

    shown = blocks[2]["fields"]
    assert len(shown) == 10
    assert [f["text"] for f in shown] == [f"*figure {i}*\n{i}" for i in range(10)]
    assert "4 more figures not shown" in blocks[-1]["elements"][0]["text"]


def test_slack_payload_escapes_mentions_and_never_splits_an_entity() -> None:
    payload = slack_payload(make_message(text="<!channel> a&b", rollout_name="<@U123>"))

    section_text = payload["blocks"][1]["text"]["text"]
    assert section_text == "&lt;!channel&gt; a&amp;b"
    assert "<@U123>" not in json.dumps(payload)

    cut = slack_payload(make_message(text="&" * 2000))["blocks"][1]["text"]["text"]
    assert len(cut) <= 3000
    assert cut.endswith("&amp;…")  # the cut falls between entities, not inside one


# -- pager ---------------------------------------------------------------------------------


def test_pager_delivery_posts_trigger_with_dedup_key_and_severity(receiver: Receiver) -> None:
    receiver.status = 202
    deliver("pager", receiver.url("/v2/enqueue"), make_message(severity="warning"))

    assert len(receiver.requests) == 1
    body = receiver.requests[0].body
    assert body == {
        "event_action": "trigger",
        "dedup_key": "rollout:search-v42:rollback:7",
        "payload": {
            "summary": "Rollout search-v42 rolled back",
            "severity": "warning",
            "source": "ion-mentoring rollout platform",
            "component": "search-v42",
            "custom_details": {
                "error rate": "3.00 %",
                "stage": "canary 5 %",
                "text": make_message().text,
            },
        },
        "links": [{"href": "https://platform.example/rollouts/search-v42/", "text": "Rollout"}],
    }
    assert "routing_key" not in body


def test_pager_payload_without_url_has_no_links_and_keeps_a_field_named_text() -> None:
    body = pager_payload(make_message(url="", fields={"text": "a figure"}, text="the text"))

    assert "links" not in body
    assert body["payload"]["custom_details"] == {"text": "a figure", "message text": "the text"}


# -- post_json outcomes ----------------------------------------------------------------------


def test_post_json_returns_2xx_status(receiver: Receiver) -> None:
    receiver.status = 204
    receiver.response_body = b""

    assert post_json(receiver.url(), {"a": 1}) == 204
    assert receiver.requests[0].body == {"a": 1}


def test_server_error_is_retryable(receiver: Receiver) -> None:
    receiver.status = 500

    with pytest.raises(DeliveryError) as caught:
        post_json(receiver.url(), {"a": 1})

    assert caught.value.retryable is True
    assert "500" in str(caught.value)


def test_rate_limit_is_retryable_with_retry_after(receiver: Receiver) -> None:
    receiver.status = 429
    receiver.response_headers = {"Retry-After": "30"}

    with pytest.raises(DeliveryError) as caught:
        post_json(receiver.url(), {"a": 1})

    assert caught.value.retryable is True
    assert caught.value.retry_after_s == 30.0


def test_client_error_is_not_retryable_and_reports_status_and_body(receiver: Receiver) -> None:
    receiver.status = 400
    receiver.response_body = b"invalid_blocks\n" + b"z" * 5000

    with pytest.raises(DeliveryError) as caught:
        deliver("slack", receiver.url(), make_message())

    error = caught.value
    assert error.retryable is False
    assert "HTTP 400" in str(error)
    assert "invalid_blocks" in str(error)
    assert len(str(error)) < 300  # only a short part of the body


def test_errors_never_reveal_the_webhook_secret(receiver: Receiver) -> None:
    receiver.status = 404

    with pytest.raises(DeliveryError) as caught:
        deliver("slack", receiver.url(), make_message())

    assert WEBHOOK_SECRET not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_redirect_is_not_followed_and_not_retryable(receiver: Receiver) -> None:
    receiver.status = 302
    receiver.response_headers = {"Location": receiver.url("/elsewhere")}

    with pytest.raises(DeliveryError) as caught:
        post_json(receiver.url(), {"a": 1})

    assert caught.value.retryable is False
    assert "302" in str(caught.value)
    assert [r.path for r in receiver.requests] == [f"/services/{WEBHOOK_SECRET}"]


def test_connection_refused_is_retryable() -> None:
    # A port bound but not listening refuses connections, and no one else can take it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(DeliveryError) as caught:
            post_json(f"http://127.0.0.1:{port}/hook", {"a": 1}, timeout_s=2)

    assert caught.value.retryable is True


def test_timeout_is_retryable(receiver: Receiver) -> None:
    receiver.delay_s = 3.0

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        post_json(receiver.url(), {"a": 1}, timeout_s=0.2)
    elapsed = time.monotonic() - started

    assert caught.value.retryable is True
    assert "timed out" in str(caught.value)
    assert elapsed < 2.0
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "127.0.0.1:8080/hook",
        "http:///no-host",
        "",
    ],
)
def test_non_http_urls_are_refused_without_retry(url: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        post_json(url, {"a": 1})

    assert caught.value.retryable is False


def test_url_with_control_characters_is_refused_without_leaking_it() -> None:
    with pytest.raises(DeliveryError) as caught:
        post_json("http://127.0.0.1:9/ho ok\nsecret", {"a": 1})

    assert caught.value.retryable is False
    assert "secret" not in str(caught.value)


# -- email and dispatch ----------------------------------------------------------------------


def test_email_goes_to_each_address_with_subject(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "rollouts@ion.example"

    deliver("email", " oncall@ion.example, pm@ion.example ,,", make_message())

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["oncall@ion.example", "pm@ion.example"]
    assert sent.from_email == "rollouts@ion.example"
    assert sent.subject == "[ion rollout] [CRITICAL] Rollout search-v42 rolled back"
    assert "Canary error rate 3.00 %" in sent.body
    assert "error rate: 3.00 %" in sent.body
    assert "https://platform.example/rollouts/search-v42/" in sent.body
    assert "rollout:search-v42:rollback:7" in sent.body


def test_email_subject_is_one_bounded_line() -> None:
    subject, _ = email_parts(make_message(title="line one\nline two " + "w" * 500))

    assert "\n" not in subject
    assert subject.startswith("[ion rollout] [CRITICAL] line one line two")
    assert len(subject) == 200


def test_email_without_address_is_not_retryable(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    with pytest.raises(DeliveryError) as caught:
        deliver("email", " , ", make_message())

    assert caught.value.retryable is False
    assert mail.outbox == []


class FailingSMTPBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")


def test_smtp_error_is_retryable(settings: Any) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.FailingSMTPBackend"

    with pytest.raises(DeliveryError) as caught:
        deliver("email", "oncall@ion.example", make_message())

    assert caught.value.retryable is True


def test_unknown_kind_is_not_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver("carrier-pigeon", "loft 3", make_message())

    assert caught.value.retryable is False


# -- Message contract ------------------------------------------------------------------------


def test_message_rejects_unknown_severity_and_bad_dedup_key() -> None:
    with pytest.raises(ValueError, match="severity"):
        make_message(severity="error")
    with pytest.raises(ValueError, match="dedup_key"):
        make_message(dedup_key="")
    with pytest.raises(ValueError, match="dedup_key"):
        make_message(dedup_key="k" * 256)
