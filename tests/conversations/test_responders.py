"""Tests for the offline knowledge-base responder and the OpenAI-compatible HTTP responder.

The HTTP tests talk to a real ThreadingHTTPServer on 127.0.0.1 (port 0) that speaks the
chat-completions protocol and follows a per-test script of responses.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conversations.memory import messages_tokens
from conversations.responders.base import (
    UNAVAILABLE_MESSAGE,
    Reply,
    Responder,
    ResponderError,
    last_user_message,
)
from conversations.responders.offline import (
    DEFAULT_KB_PATH,
    KnowledgeBaseResponder,
    load_knowledge_base,
)
from conversations.responders.openai_compat import REJECTED_MESSAGE, ChatCompletionsResponder

MENTEE_FACTS = {"name": "Mina", "goal": "become a data scientist"}


def _ask(text: str, history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a mentor."},
        *(history or []),
        {"role": "user", "content": text},
    ]


# --------------------------------------------------------------------------------------------
# Knowledge base
# --------------------------------------------------------------------------------------------

REQUIRED_TOPICS = {
    "career-change", "first-job", "interview-prep", "resume", "salary-negotiation",
    "learning-backend", "learning-frontend", "learning-data-science", "learning-ml",
    "learning-devops", "learning-product-management", "learning-ux", "imposter-syndrome",
    "time-management", "leadership", "feedback", "remote-work", "networking", "side-projects",
    "burnout", "promotions", "mentoring",
}  # fmt: skip


def test_knowledge_base_has_100_unique_complete_entries():
    raw = json.loads(DEFAULT_KB_PATH.read_text(encoding="utf-8"))
    assert len(raw) >= 100
    for entry in raw:
        assert set(entry) == {"id", "topic", "tags", "question", "answer"}
        assert all(isinstance(entry[k], str) and entry[k].strip() for k in ("id", "topic"))
        assert entry["question"].strip().endswith("?")
        assert entry["tags"] and all(isinstance(t, str) and t.strip() for t in entry["tags"])
        answer = entry["answer"]
        assert 2 <= answer.count(". ") + 1 <= 5 and len(answer) > 120
        assert "lorem" not in answer.lower()
    for key in ("id", "question", "answer"):
        values = [e[key].strip().lower() for e in raw]
        assert len(values) == len(set(values)), f"duplicate {key}"
    assert {e["topic"] for e in raw} >= REQUIRED_TOPICS
    assert len(load_knowledge_base()) == len(raw)


def test_load_knowledge_base_rejects_broken_files(tmp_path):
    good = {"id": "a", "topic": "t", "tags": ["x"], "question": "q?", "answer": "a."}
    cases = {
        "not_a_list.json": {"entries": []},
        "empty_field.json": [{**good, "answer": ""}],
        "missing_field.json": [{k: v for k, v in good.items() if k != "tags"}],
        "duplicate_id.json": [good, {**good, "question": "other?"}],
        "bad_tags.json": [{**good, "tags": "x"}],
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(content), encoding="utf-8")
        with pytest.raises(ValueError):
            load_knowledge_base(path)


# --------------------------------------------------------------------------------------------
# Offline responder
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb() -> KnowledgeBaseResponder:
    return KnowledgeBaseResponder()


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("I have a job interview next week, how should I prepare?", "interview-prep"),
        ("How do I answer behavioral interview questions?", "interview-prep"),
        ("How do I negotiate my salary offer?", "salary-negotiation"),
        ("Any tips for my CV?", "resume"),
        ("I'm exhausted and think I'm burning out", "burnout"),
        ("Should I learn Kubernetes?", "learning-devops"),
        ("Should I learn React or Vue?", "learning-frontend"),
        ("How do I switch careers from teaching into software?", "career-change"),
        ("I feel like an imposter at work", "imposter-syndrome"),
        ("How can I find a mentor?", "mentoring"),
        ("How do I get promoted to senior?", "promotions"),
        ("면접 준비는 어떻게 하나요?", "interview-prep"),
    ],
)
def test_offline_search_finds_relevant_entries(kb, question, topic):
    hits = kb.search(question)
    assert hits, question
    assert hits[0][0].topic == topic
    assert hits == kb.search(question)  # deterministic


def test_offline_reply_uses_best_entry_and_facts(kb):
    reply = kb.respond(_ask("How should I prepare for my interviews?"), facts=MENTEE_FACTS)
    best = kb.search("How should I prepare for my interviews?", facts=MENTEE_FACTS)[0][0]
    assert best.topic == "interview-prep"
    assert isinstance(reply, Reply)
    assert reply.backend == "offline-kb"
    assert best.answer in reply.text
    assert reply.text.startswith("Mina, ")
    assert "since your goal is to become a data scientist" in reply.text
    assert reply.tokens > messages_tokens(_ask("How should I prepare for my interviews?"))


def test_offline_reply_personalises_field_level_and_preference(kb):
    facts = {"field": "UX designer", "level": "junior", "preference": "video courses"}
    reply = kb.respond(_ask("What is a good learning path for frontend?"), facts=facts)
    assert reply.text.startswith("Building on your experience as a UX designer, ")
    assert "Since you prefer video courses" in reply.text
    assert "early in your journey" in reply.text


def test_offline_reply_without_facts_is_neutral_and_deterministic(kb):
    messages = _ask("How do I write good resume bullet points?")
    first = kb.respond(messages, facts={})
    assert first == kb.respond(messages, facts={})
    assert first.text.startswith("Here is how I would approach it.")
    assert "Mina" not in first.text


def test_offline_uses_earlier_messages_as_context(kb):
    history = [
        {"role": "user", "content": "I want to move into DevOps and infrastructure work."},
        {"role": "assistant", "content": "Great, let's plan it."},
    ]
    reply = kb.respond(_ask("Where should I start?", history), facts={})
    assert any(e.answer in reply.text for e in kb.entries if e.topic == "learning-devops")


def test_offline_fallback_when_nothing_matches(kb):
    reply = kb.respond(_ask("What's the weather like on Mars today?"), facts=MENTEE_FACTS)
    assert "don't have a specific note on that" in reply.text
    assert reply.text.startswith("Mina, ")
    assert "Since your goal is to become a data scientist" in reply.text
    assert not any(e.answer in reply.text for e in kb.entries)


def test_offline_requires_a_user_message(kb):
    with pytest.raises(ResponderError) as info:
        kb.respond([{"role": "system", "content": "You are a mentor."}], facts={})
    assert info.value.user_message
    assert last_user_message(_ask("hello")) == "hello"
    assert last_user_message([]) == ""


def test_responders_satisfy_protocol(kb):
    assert isinstance(kb, Responder)
    assert isinstance(ChatCompletionsResponder("http://127.0.0.1:9", "", "m"), Responder)


# --------------------------------------------------------------------------------------------
# Scripted chat-completions server
# --------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One scripted response: status, JSON body (or raw bytes), extra headers, delay."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def ok(content: str = "Hello from the model.", total_tokens: int | None = 42) -> Step:
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    if total_tokens is not None:
        body["usage"] = {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": total_tokens}
    return Step(body=body)


def fail(status: int, **headers: str) -> Step:
    return Step(status=status, body={"error": {"message": f"scripted {status}"}}, headers=headers)


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.script: list[Step] = [ok()]
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address):  # client timeouts break pipes: expected
        pass


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": json.loads(body)}
            )
            script = self.server.script
            step = script[min(len(self.server.requests), len(script)) - 1]  # last step repeats
        if step.delay_s:
            self.server.stopping.wait(step.delay_s)
        payload = step.raw if step.raw is not None else json.dumps(step.body).encode()
        try:
            self.send_response(step.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in step.headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def make_responder(server: ScriptedServer, **kwargs: Any) -> ChatCompletionsResponder:
    options: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 2, "backoff_s": 0.001}
    options.update(kwargs)
    return ChatCompletionsResponder(server.base_url, "sk-test-key", "mentor-model", **options)


# --------------------------------------------------------------------------------------------
# HTTP responder
# --------------------------------------------------------------------------------------------


def test_http_success_sends_model_messages_and_bearer_key(server):
    server.script = [ok("  Start with SQL and statistics, Mina.  ", total_tokens=57)]
    messages = _ask("Where do I start?")
    reply = make_responder(server).respond(messages, facts=MENTEE_FACTS)
    assert reply == Reply("Start with SQL and statistics, Mina.", 57, "openai-compat:mentor-model")
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-key"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"]["model"] == "mentor-model"
    assert request["body"]["messages"] == messages
    assert isinstance(request["body"]["temperature"], float)


def test_http_without_key_or_usage(server):
    server.script = [ok("Sure.", total_tokens=None)]
    messages = _ask("Hi")
    responder = ChatCompletionsResponder(server.base_url + "/", "", "local", backoff_s=0.001)
    reply = responder.respond(messages, facts={})
    assert "Authorization" not in server.requests[0]["headers"]
    assert server.requests[0]["path"] == "/v1/chat/completions"  # trailing slash handled
    assert reply.tokens == messages_tokens(messages) + 2  # estimated: "Sure" + "."


def test_http_retries_after_503_then_succeeds(server):
    server.script = [fail(503), ok("Recovered.")]
    sleeps: list[float] = []
    reply = make_responder(server, backoff_s=0.01, sleep=sleeps.append).respond(
        _ask("Hi"), facts={}
    )
    assert reply.text == "Recovered."
    assert len(server.requests) == 2
    assert sleeps == [0.01]


def test_http_honours_retry_after_on_429(server):
    server.script = [fail(429, Retry_After="0.05"), ok("Fine now.")]
    sleeps: list[float] = []
    reply = make_responder(server, backoff_s=0.001, sleep=sleeps.append).respond(
        _ask("Hi"), facts={}
    )
    assert reply.text == "Fine now."
    assert sleeps == [0.05]


def test_http_500_forever_gives_friendly_error_after_all_attempts(server):
    server.script = [fail(500)]
    sleeps: list[float] = []
    responder = make_responder(server, max_retries=3, backoff_s=0.01, sleep=sleeps.append)
    with pytest.raises(ResponderError) as info:
        responder.respond(_ask("Hi"), facts={})
    error = info.value
    assert len(server.requests) == 4 == error.attempts  # 1 + max_retries
    assert sleeps == [0.01, 0.02, 0.04]  # exponential backoff
    assert str(error) == error.user_message == UNAVAILABLE_MESSAGE
    assert error.status == 500
    assert "HTTP 500" in error.detail and "scripted 500" in error.detail  # cause kept for logs
    assert "sk-test-key" not in repr(error) + repr(responder)


def test_http_real_backoff_sleeps(server):
    server.script = [fail(502)]
    started = time.monotonic()
    with pytest.raises(ResponderError):
        make_responder(server, max_retries=2, backoff_s=0.05).respond(_ask("Hi"), facts={})
    assert time.monotonic() - started >= 0.05 + 0.1
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, REJECTED_MESSAGE), (422, REJECTED_MESSAGE), (401, UNAVAILABLE_MESSAGE)],
)
def test_http_client_errors_are_not_retried(server, status, message):
    server.script = [fail(status), ok()]
    with pytest.raises(ResponderError) as info:
        make_responder(server).respond(_ask("Hi"), facts={})
    assert len(server.requests) == 1
    assert info.value.attempts == 1
    assert info.value.status == status
    assert info.value.user_message == message


def test_http_timeout_is_retried_then_reported(server):
    server.script = [Step(delay_s=2.0, body=ok().body)]
    responder = make_responder(server, timeout_s=0.2, max_retries=1)
    started = time.monotonic()
    with pytest.raises(ResponderError) as info:
        responder.respond(_ask("Hi"), facts={})
    assert time.monotonic() - started < 1.5  # did not wait for the slow server
    assert info.value.attempts == 2
    assert len(server.requests) == 2
    assert info.value.user_message == UNAVAILABLE_MESSAGE
    assert "timed out" in info.value.detail.lower()


def test_http_timeout_then_success(server):
    server.script = [Step(delay_s=2.0, body=ok().body), ok("Made it.")]
    reply = make_responder(server, timeout_s=0.2).respond(_ask("Hi"), facts={})
    assert reply.text == "Made it."


@pytest.mark.parametrize(
    "step",
    [
        Step(raw=b"<html>Bad gateway</html>"),
        Step(raw=b'{"choices": [{"message": {"content": "unterminated'),
        Step(body={"choices": []}),
        Step(body={"choices": [{"message": {"content": None}}]}),
        Step(body={"choices": [{"message": {"content": "   "}}]}),
        Step(body=["not", "an", "object"]),
    ],
)
def test_http_malformed_responses_raise_responder_error(server, step):
    server.script = [step]
    with pytest.raises(ResponderError) as info:
        make_responder(server).respond(_ask("Hi"), facts={})
    assert info.value.user_message == UNAVAILABLE_MESSAGE
    assert "malformed" in info.value.detail
    assert len(server.requests) == 1  # not retried


def test_http_connection_refused_is_retried_then_reported():
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    responder = ChatCompletionsResponder(
        f"http://127.0.0.1:{port}", "k", "m", max_retries=2, backoff_s=0.001, sleep=sleeps.append
    )
    with pytest.raises(ResponderError) as info:
        responder.respond(_ask("Hi"), facts={})
    assert info.value.attempts == 3
    assert len(sleeps) == 2
    assert "refused" in info.value.detail.lower()


def test_http_summarise_asks_backend_for_a_summary(server):
    server.script = [ok("The mentee, Mina, wants to become a data scientist.")]
    summary = make_responder(server).summarise("user: My name is Mina ...", max_sentences=3)
    assert summary == "The mentee, Mina, wants to become a data scientist."
    body = server.requests[0]["body"]
    assert body["temperature"] == 0.0
    assert body["messages"][0]["role"] == "system"
    assert "at most 3" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "user: My name is Mina ..."}


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "file:///etc/passwd", "example.com"])
def test_http_rejects_non_http_urls(url):
    with pytest.raises(ValueError):
        ChatCompletionsResponder(url, "k", "m")
