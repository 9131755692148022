"""Start a real Celery worker process against the test database for a test."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url_of_test_db() -> str:
    """The URL of the database this test process is using (the test database)."""
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or ""
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{conf['NAME']}"


@contextmanager
def celery_worker(
    *, redis_url: str, data_dir: Path, beat: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A worker (optionally with embedded beat) on Redis, or on the embedded
    broker (a SQLite file in `data_dir`) when `redis_url` is empty. Stopped on exit; its log is
    printed when the test fails."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "DEBUG": "1",
        **(extra_env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"test-{os.getpid()}@%h",
    ]
    if beat:
        cmd += ["-B", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        print(log_path.read_text()[-4000:])


def wait_for(predicate, *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
