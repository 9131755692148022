"""`make run` (scripts/run.sh) on the embedded default, as a newcomer starts
it: a worker that dies is restarted and the web server keeps serving
meanwhile; Ctrl-C stops everything within seconds and leaves no process."""

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.web import Client, free_port
from tests.integration.worker import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RESTARTED = re.compile(r"run\.sh: worker restarted \(pid (\d+)\)")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _processes_of(data_dir: Path) -> list[int]:
    """Live processes whose environment names this test's data folder."""
    marker = f"DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _healthz(client: Client) -> int:
    try:
        return client.request("GET", "/healthz")[0]
    except OSError:
        return 0


def test_a_dying_worker_is_restarted_and_ctrl_c_stops_everything(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), DEBUG="1")
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        # Its own session, and SIGINT not ignored: as in a terminal, where Ctrl-C
        # reaches the script in the foreground.
        run = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    client = Client("127.0.0.1", port)
    try:
        # The first start migrates and simulates the demo rollout: minutes on a busy machine.
        assert wait_for(lambda: _healthz(client) == 200, timeout=600, interval=1), "never served"
        workers = [p for p in _children(run.pid) if "celery" in _cmdline(p)]
        assert len(workers) == 1, [_cmdline(p) for p in _children(run.pid)]

        os.kill(workers[0], signal.SIGKILL)
        statuses = []
        assert wait_for(
            lambda: statuses.append(_healthz(client)) or RESTARTED.search(log_path.read_text()),
            timeout=60,
        )
        assert run.poll() is None
        assert set(statuses) == {200}, statuses  # served all along
        new_worker = int(RESTARTED.search(log_path.read_text()).group(1))
        assert new_worker != workers[0] and "celery" in _cmdline(new_worker)
        assert "the worker exited with status 137" in log_path.read_text()

        # The restarted worker works: it runs the beat's heartbeat (≤ 30 s apart).
        ticks = log_path.read_text().count("beat tick: heartbeat")
        assert wait_for(
            lambda: log_path.read_text().count("beat tick: heartbeat") > ticks, timeout=90
        )

        run.send_signal(signal.SIGINT)  # Ctrl-C
        run.wait(timeout=30)
        assert wait_for(lambda: not _processes_of(data_dir), timeout=2), [
            _cmdline(p) for p in _processes_of(data_dir)
        ]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        for pid in _processes_of(data_dir):
            os.kill(pid, signal.SIGKILL)
        print(log_path.read_text()[-4000:])
