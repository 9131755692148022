"""A private redis-server on a free port, for tests that kill, freeze and
restart it. Never the machine's shared Redis: a fault test harms only its own
copy. Tests that need one skip when the redis-server binary is absent."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.web import free_port

BINARY = shutil.which("redis-server")


def need_binary() -> None:
    if BINARY is None:
        pytest.skip("the redis-server binary is not installed")


class PrivateRedis:
    """`redis-server --port N --save '' --appendonly no`: nothing survives a kill."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        need_binary()
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = folder / f"redis-{self.port}.log"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "PrivateRedis":
        """Start it (again, on the same port) and wait until it answers PING."""
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [
                    BINARY,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.folder),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_path.read_text()[-1000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 10 s")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """`kill -9`: the data it held is gone."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but nothing answers
        (a hung server, or a network that drops its packets); the data stays."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
