"""Fixtures of the conversation tests: the API on behalf of mentees, the v2 rollout, and a
real local chat-completions server standing in for an LLM backend."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import make_rollout

SUMMARY_REPLY = "The mentee, Mina, wants to become a data scientist and is learning SQL."


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The shared user fixtures set a password; the default hasher spends ~0.3 s on it per
    user, which would dominate these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class Mentee:
    """The front end talking to the v2 API on behalf of one mentee."""

    def __init__(self, api: APIClient, user_id: str) -> None:
        self.api = api
        self.user_id = user_id

    def start(self, topic: str = "career", **extra: Any):
        return self.api.post(
            "/api/v2/conversations/", {"user_id": self.user_id, "topic": topic, **extra}, "json"
        )

    def say(self, session_id: int, text: str):
        return self.api.post(
            f"/api/v2/conversations/{session_id}/messages/",
            {"user_id": self.user_id, "text": text},
            "json",
        )

    def history(self, session_id: int):
        return self.api.get(f"/api/v2/conversations/{session_id}/", {"user_id": self.user_id})

    def end(self, session_id: int, outcome: str = "reached"):
        return self.api.post(
            f"/api/v2/conversations/{session_id}/end/",
            {"user_id": self.user_id, "outcome": outcome},
            "json",
        )

    def rate(self, session_id: int, rating: Any):
        return self.api.post(
            f"/api/v2/conversations/{session_id}/feedback/",
            {"user_id": self.user_id, "rating": rating},
            "json",
        )

    def memory(self):
        return self.api.get(f"/api/v2/users/{self.user_id}/memory/")

    def forget(self):
        return self.api.delete(f"/api/v2/users/{self.user_id}/memory/")


@pytest.fixture
def mina(integration_api) -> Mentee:
    return Mentee(integration_api, "mina-42")


@pytest.fixture
def other_mentee(integration_api) -> Mentee:
    return Mentee(integration_api, "joon-7")


@pytest.fixture
def v2_for_everyone(db):
    """A conversations rollout at the full stage: every mentee gets v2 (canary)."""
    return make_rollout("conversations-v2", feature="conversations", stage="full")


# --------------------------------------------------------------------------------------------
# A small OpenAI-compatible chat-completions server
# --------------------------------------------------------------------------------------------


class ChatServer(ThreadingHTTPServer):
    """Answers POST /v1/chat/completions. ``failing`` makes it answer HTTP 500; summary
    requests (temperature 0 with the summariser's system prompt) get ``SUMMARY_REPLY``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict[str, Any]] = []
        self.failing = False
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if not is_summary_request(r)]

    def summary_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if is_summary_request(r)]


def is_summary_request(body: dict[str, Any]) -> bool:
    return body.get("temperature") == 0.0 and body["messages"][0]["content"].startswith(
        "You summarise"
    )


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with self.server.lock:
            self.server.requests.append(body)
            number = len(self.server.chat_requests())
            failing = self.server.failing
        if failing:
            status, payload = 500, {"error": {"message": "the model is overloaded"}}
        else:
            content = SUMMARY_REPLY if is_summary_request(body) else f"Model reply {number}."
            status = 200
            payload = {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105},
            }
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def llm_backend(settings, chat_server) -> ChatServer:
    """settings point the v2 responder at the local chat-completions server."""
    settings.LLM_BASE_URL = chat_server.base_url
    settings.LLM_API_KEY = "sk-local-test"
    settings.LLM_MODEL = "mentor-test"
    settings.LLM_TIMEOUT_SECONDS = 2
    settings.LLM_MAX_RETRIES = 1
    settings.LLM_BACKOFF_SECONDS = 0.001
    return chat_server
