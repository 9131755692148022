"""A real HTTP server on 127.0.0.1 that records what it receives: the
receiving end of webhooks in tests (never a mock object)."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

WEBHOOK_SECRET = "T000/B000/s3cr3t-token"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 recording requests; its answer is scripted per test."""

    base_url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    response_body: bytes = b"ok"
    response_headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = f"/services/{WEBHOOK_SECRET}") -> str:
        return self.base_url + path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert state is not None
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            state.requests.append(
                Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            if state.delay_s:
                # An Event rather than sleep(): teardown releases a handler still waiting.
                state.release.wait(state.delay_s)
            try:
                self.send_response(state.status)
                for name, value in state.response_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(state.response_body)))
                self.end_headers()
                self.wfile.write(state.response_body)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
