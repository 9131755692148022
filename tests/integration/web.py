"""Start a real web server process for a test, and talk to it over HTTP."""

import http.client
import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def web_server(*, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`manage.py runserver --noreload` (what `make run` serves) on a free port
    with `env`; yields its base URL once /healthz answers. Stopped on exit; the
    end of its log is printed (pytest shows it when the test fails)."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the web server exited with {process.returncode}")
            try:
                status, _ = Client("127.0.0.1", port).request("GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        print(f"--- {log_path.name} ---")
        print(log_path.read_text()[-4000:])


class Client:
    """HTTP with cookies, one connection per request: on a kept-alive
    connection runserver's two writes per response meet the client's delayed
    ACK, and each request waits ≈ 40 ms."""

    def __init__(self, host: str, port: int, *, token: str | None = None) -> None:
        self.host, self.port = host, port
        self.headers = {"Authorization": f"Token {token}"} if token else {}
        self.cookies: dict[str, str] = {}

    @classmethod
    def of(cls, base_url: str, **kwargs) -> "Client":
        parsed = urllib.parse.urlsplit(base_url)
        return cls(parsed.hostname, parsed.port, **kwargs)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        headers = {**self.headers, **(headers or {}), "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return response.status, data

    def post_json(self, path: str, payload: dict) -> dict:
        status, data = self.request(
            "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise AssertionError(f"POST {path} answered {status}: {data[:500]!r}")
        return json.loads(data)

    def post_form(self, path: str, fields: list[tuple[str, str]]) -> tuple[int, bytes]:
        return self.request(
            "POST",
            path,
            urllib.parse.urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )


_CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token_of(page: bytes) -> str:
    found = _CSRF_FIELD.search(page)
    if found is None:
        raise AssertionError("no CSRF token on the page")
    return found.group(1).decode()


def admin_login(client: Client, *, username: str, password: str) -> None:
    """Log in to the Django admin as a browser does (session and CSRF cookies)."""
    status, page = client.request("GET", "/admin/login/")
    assert status == 200, status
    status, page = client.post_form(
        "/admin/login/?next=/admin/",
        [
            ("csrfmiddlewaretoken", csrf_token_of(page)),
            ("username", username),
            ("password", password),
            ("next", "/admin/"),
        ],
    )
    assert status == 302, f"admin login answered {status}: {page[:300]!r}"


def admin_action(client: Client, *, changelist: str, action: str, ids: list[int]) -> bytes:
    """Run a bulk action of a changelist on the selected rows, as the admin's
    form posts it; returns the changelist page the admin redirects to."""
    status, page = client.request("GET", changelist)
    assert status == 200, status
    status, body = client.post_form(
        changelist,
        [
            ("csrfmiddlewaretoken", csrf_token_of(page)),
            ("action", action),
            ("index", "0"),
            ("select_across", "0"),
            *[("_selected_action", str(i)) for i in ids],
        ],
    )
    assert status == 302, f"admin action {action} answered {status}: {body[:300]!r}"
    status, page = client.request("GET", changelist)
    assert status == 200, status
    return page
