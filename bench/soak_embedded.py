"""Soak of the embedded default: `scripts/run.sh` (what `make run` starts:
SQLite, the file cache, the SQLite broker, runserver, a worker with embedded
beat) in a temporary DATA_DIR, under mixed REST traffic for a while.

    .venv/bin/python bench/soak_embedded.py [--minutes 30] [--clients 2] [--pause 0]
        [--from-data-dir DIR] [--keep]

Traffic, per client in a closed loop: assignments, event batches (ids unique
to the run), request-metric batches, results reads, routing, pages of a
logged-in product manager and /healthz. Every 10 s it samples whether the web
server and the worker are alive and the worker's backlog (messages waiting in
the broker file). At the end it stops run.sh with SIGINT, as Ctrl-C does, and
reports the requests and their statuses, 5xx, transport errors, worker
restarts, whether the web server died, the largest backlog, the events
accepted against the events stored, how long the stop took and any process
of the run left behind.

`--from-data-dir` copies a data folder that already went through a first start
(demo accounts and the simulated rollout) instead of running that first start.
"""

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = "rec-engine-v2"
ROLLOUT = "phase4-recommendations"
METRICS = ("adoption", "completion", "session_duration", "satisfaction")
REQUEST_TIMEOUT_S = 30
TOKEN_LINE = re.compile(r"\bintegration\s+API token: (\w+)")
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Http:
    """One connection per request (runserver closes it anyway), with cookies."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.headers = {"Authorization": f"Token {token}"} if token else {}
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        headers = {**self.headers, **(headers or {}), "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def post_json(self, path: str, payload: dict):
        return self.request(
            "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )

    def login(self, username: str, password: str) -> None:
        status, page = self.request("GET", "/accounts/login/")
        found = CSRF_FIELD.search(page.decode())
        if status != 200 or not found:
            raise RuntimeError(f"login page answered {status}")
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": found.group(1), "username": username, "password": password}
        ).encode()
        status, _ = self.request(
            "POST",
            "/accounts/login/",
            form,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 302:
            raise RuntimeError(f"login of {username} answered {status}")


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.errors: Counter[str] = Counter()
        self.events_sent = 0
        self.events_accepted = 0
        self.server_errors: list[str] = []

    def record(self, kind: str, status: int, body: bytes) -> None:
        with self.lock:
            self.statuses[(kind, status)] += 1
            if status >= 500 and len(self.server_errors) < 20:
                self.server_errors.append(f"{kind} {status}: {body[:200]!r}")


def client_loop(
    port: int, token: str, run_id: str, n: int, pause: float, stop: threading.Event, tally: Tally
):
    rng = random.Random(n)
    api = Http(port, token)
    pages = Http(port)
    pages.login("pm", "pm-demo-pass")
    sequence = 0
    while not stop.is_set():
        sequence += 1
        unit = f"soak-{n}-{rng.randrange(50_000)}"
        kind = rng.choices(
            ["assignment", "events", "request-metrics", "results", "route", "page", "healthz"],
            weights=[35, 15, 20, 10, 10, 7, 3],
        )[0]
        try:
            if kind == "assignment":
                status, body = api.post_json(
                    "/api/v1/assignments/", {"experiment": EXPERIMENT, "unit_id": unit}
                )
            elif kind == "events":
                now = datetime.now(UTC).isoformat()
                batch = [
                    {
                        "event_id": f"{run_id}-{n}-{sequence}-{i}",
                        "unit_id": f"soak-{n}-{rng.randrange(50_000)}",
                        "metric": rng.choice(METRICS),
                        "value": rng.choice([1, 1, 2.5, 4]),
                        "timestamp": now,
                    }
                    for i in range(50)
                ]
                status, body = api.post_json("/api/v1/events/", {"events": batch})
                with tally.lock:
                    tally.events_sent += len(batch)
                    if status == 200:
                        tally.events_accepted += json.loads(body)["accepted"]
            elif kind == "request-metrics":
                samples = [
                    {
                        "version": rng.choice(["stable", "canary"]),
                        "latency_ms": rng.lognormvariate(3.3, 0.4),
                        "status": 500 if rng.random() < 0.002 else 200,
                    }
                    for _ in range(25)
                ]
                status, body = api.post_json(
                    f"/api/v1/rollouts/{ROLLOUT}/request-metrics/", {"samples": samples}
                )
            elif kind == "results":
                status, body = api.request("GET", f"/api/v1/experiments/{EXPERIMENT}/results/")
            elif kind == "route":
                status, body = api.post_json(
                    f"/api/v1/rollouts/{ROLLOUT}/route/", {"unit_id": unit}
                )
            elif kind == "page":
                path = rng.choice(["/", f"/experiments/{EXPERIMENT}/", f"/rollouts/{ROLLOUT}/"])
                status, body = pages.request("GET", path)
            else:
                status, body = api.request("GET", "/healthz")
        except (OSError, http.client.HTTPException) as exc:
            with tally.lock:
                tally.errors[f"{kind}: {type(exc).__name__}"] += 1
            time.sleep(0.5)
            continue
        tally.record(kind, status, body)
        if pause:
            time.sleep(pause)


def backlog(broker_file: Path) -> int | None:
    """Messages waiting in the broker (visible rows), read-only."""
    try:
        with sqlite3.connect(f"file:{broker_file}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM kombu_message WHERE visible = 1").fetchone()[
                0
            ]
    except sqlite3.Error:
        return None


def processes_of(data_dir: Path) -> list[int]:
    """Live processes whose environment names this run's data folder."""
    marker = f"DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def stored_events(db_file: Path, run_id: str) -> int:
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(
            "SELECT count(*) FROM experiments_event WHERE event_id LIKE ?", (f"{run_id}-%",)
        ).fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds between a client's requests"
    )
    parser.add_argument("--from-data-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="soak-embedded-"))
    if args.from_data_dir:
        shutil.copytree(
            args.from_data_dir, data_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("cache")
        )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), DEBUG="1")
    log_path = data_dir / "run.log"
    log = open(log_path, "w")  # noqa: SIM115 - run.sh writes to it until the very end
    # SIGINT as a terminal's Ctrl-C delivers it: run.sh must not inherit "ignored".
    run = subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    print(f"run.sh pid {run.pid} on port {port}, data in {data_dir}", flush=True)
    deadline = time.monotonic() + 900
    while True:
        if run.poll() is not None:
            print(log_path.read_text()[-3000:])
            raise SystemExit(f"run.sh exited with {run.returncode} before serving")
        try:
            if Http(port).request("GET", "/healthz")[0] in (200, 503):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("run.sh did not serve /healthz within 15 minutes")
        time.sleep(1)
    token = TOKEN_LINE.search(log_path.read_text())
    if not token:
        raise SystemExit("no integration token in run.sh's output")

    run_id = f"soak{int(time.time())}"
    tally, stop = Tally(), threading.Event()
    clients = [
        threading.Thread(
            target=client_loop,
            args=(port, token.group(1), run_id, n, args.pause, stop, tally),
            daemon=True,
        )
        for n in range(args.clients)
    ]
    started = time.monotonic()
    for thread in clients:
        thread.start()
    samples = []
    end = started + args.minutes * 60
    while time.monotonic() < end and run.poll() is None:
        time.sleep(min(10, max(0.1, end - time.monotonic())))
        text = log_path.read_text(errors="replace")
        samples.append(
            {
                "t": round(time.monotonic() - started),
                "backlog": backlog(data_dir / "broker.sqlite3"),
                "worker_restarts": text.count("run.sh: worker restarted"),
                "requests": sum(tally.statuses.values()),
            }
        )
        if len(samples) % 30 == 0:
            print(json.dumps(samples[-1]), flush=True)
    stop.set()
    for thread in clients:
        thread.join(timeout=REQUEST_TIMEOUT_S + 5)
    elapsed = time.monotonic() - started
    run_died = run.poll() is not None

    stop_started = time.monotonic()
    if not run_died:
        run.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=60)
    stop_seconds = round(time.monotonic() - stop_started, 1)
    time.sleep(0.5)
    left_behind = processes_of(data_dir)
    log.close()
    text = log_path.read_text(errors="replace")

    statuses = Counter()
    for (kind, status), count in tally.statuses.items():
        statuses[f"{kind} {status}"] += count
    backlogs = [s["backlog"] for s in samples if s["backlog"] is not None]
    report = {
        "minutes": round(elapsed / 60, 1),
        "clients": args.clients,
        "requests": sum(tally.statuses.values()),
        "requests_per_s": round(sum(tally.statuses.values()) / elapsed, 1),
        "server_errors_5xx": sum(c for (_, s), c in tally.statuses.items() if s >= 500),
        "transport_errors": dict(tally.errors),
        "statuses": dict(sorted(statuses.items())),
        "web_server_died": run_died,
        "worker_restarts": text.count("run.sh: worker restarted"),
        "tracebacks_in_log": text.count("Traceback (most recent call last)"),
        "tasks_succeeded": text.count("] succeeded in "),
        "backlog_max": max(backlogs, default=None),
        "backlog_last": backlogs[-1] if backlogs else None,
        "events_sent": tally.events_sent,
        "events_accepted": tally.events_accepted,
        "events_stored": stored_events(data_dir / "db.sqlite3", run_id),
        "stop_seconds_after_sigint": stop_seconds,
        "run_sh_exit": run.returncode,
        "processes_left_behind": left_behind,
        "first_5xx": tally.server_errors[:5],
    }
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"data and log kept in {data_dir}")
    healthy = (
        not run_died
        and report["server_errors_5xx"] == 0
        and not left_behind
        and report["events_stored"] == report["events_accepted"]
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
