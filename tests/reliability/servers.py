"""gunicorn, as production serves the platform, on a free port for a test."""

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.web import ROOT, Client, free_port


@contextmanager
def gunicorn_server(
    *,
    env: dict[str, str],
    log_path: Path,
    workers: int = 2,
    ready: tuple[int, ...] = (200,),
) -> Iterator[str]:
    """`gunicorn config.wsgi` with `workers` sync workers and `env`; yields its
    base URL once /healthz answers one of `ready`. Stopped (SIGTERM, so its
    workers exit as on a deploy) on exit; the end of its log is printed."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "20",
                # Its control socket lives in the home folder, one path for every
                # gunicorn on the machine: a test's server needs none.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}")
            try:
                status, _ = Client("127.0.0.1", port).request("GET", "/healthz")
                if status in ready:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz with {ready} within 60 s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        print(f"--- {log_path.name} ---")
        print(log_path.read_text()[-6000:])


def stop(process: subprocess.Popen) -> None:
    """SIGTERM and wait: the workers finish their requests and exit."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
