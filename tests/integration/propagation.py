"""Pieces of the propagation tests: the data they start from, the two set-ups
(the embedded default and Redis), and the measurement of how long after a
commit another process still answers from the old configuration."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.integration.web import ROOT, Client

# The documented bound (README, config/settings.py, common/tiered_cache.py): a
# change committed in any process is seen by every other within this time.
BOUND_SECONDS = 1.0
FRESH_UNITS = 500

ROLLOUT_KEY = "propagation-canary"
EXPERIMENT_KEY = "propagation-experiment"
ADMIN = ("propagation-admin", "propagation-admin-pass")


def seed() -> dict:
    """What both scenarios start from, written through the ORM of whichever
    process runs it: an integration token, an admin, a rollout at its canary
    stage (5 %), an experiment running on all traffic, and a beat that runs only
    the rollout job, every second."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks
    from rest_framework.authtoken.models import Token

    from rollout.models import Rollout
    from tests.factories import make_experiment

    User = get_user_model()
    integration = User.objects.create_user(username="propagation-integration")
    integration.groups.add(Group.objects.get(name="Integrations"))
    User.objects.create_superuser(username=ADMIN[0], password=ADMIN[1], email="")
    # The row itself rather than the services, whose signatures are moving:
    # only routing from this configuration matters here.
    rollout = Rollout.objects.create(
        key=ROLLOUT_KEY,
        name=ROLLOUT_KEY,
        feature="propagation",
        stage="canary",
        canary_percent=5.0,
        stage_entered_at=timezone.now(),
    )
    experiment = make_experiment(EXPERIMENT_KEY, traffic_percent=100)
    # Other periodic jobs would queue in front of the evaluation on a solo
    # worker; the schedule's interval is not what these tests measure.
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.exclude(task="rollout.flush_and_evaluate").update(enabled=False)
    PeriodicTask.objects.filter(task="rollout.flush_and_evaluate").update(interval=every_second)
    PeriodicTasks.update_changed()
    return {
        "token": Token.objects.create(user=integration).key,
        "rollout_id": rollout.id,
        "experiment_id": experiment.id,
    }


# --- the two set-ups -----------------------------------------------------------------


def embedded_env(data_dir: Path) -> dict[str, str]:
    """What `make run` gives a new user: no DATABASE_URL, no REDIS_URL, so
    SQLite, the cache and the broker all live in DATA_DIR. Forced here, whatever
    the environment of the test run (CI sets both)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATA_DIR=str(data_dir), DEBUG="1", CACHE_KEY_PREFIX="ion")
    return env


def build_embedded_template(directory: Path) -> dict:
    """A migrated, seeded embedded-default data folder (built once per run)."""
    env = embedded_env(directory)
    for args in (
        ["migrate", "--noinput"],
        [
            "shell",
            "-c",
            "import json; from tests.integration.propagation import seed; "
            "print('SEED' + json.dumps(seed()))",
        ],
    ):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("SEED"))
    return json.loads(line[4:])


def _timestamp(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


@dataclass
class EmbeddedWorld:
    """A private copy of the template data folder. Its database is not the test
    run's, so the test reads it with sqlite3 directly."""

    data_dir: Path
    seeded: dict
    name: str = "embedded"

    @classmethod
    def copy_of(cls, template: Path, seeded: dict, tmp_path: Path) -> "EmbeddedWorld":
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        for suffix in ("", "-wal"):
            source = template / f"db.sqlite3{suffix}"
            if source.exists():
                shutil.copy(source, data_dir / source.name)
        return cls(data_dir, seeded)

    @property
    def env(self) -> dict[str, str]:
        return embedded_env(self.data_dir)

    def worker_args(self) -> dict:
        return {
            "redis_url": "",
            "data_dir": self.data_dir,
            "extra_env": {"DATABASE_URL": "", "CACHE_KEY_PREFIX": "ion"},
        }

    def _row(self, sql: str, key: str):
        with closing(
            sqlite3.connect(self.data_dir / "db.sqlite3", timeout=5, isolation_level=None)
        ) as connection:
            return connection.execute(sql, (key,)).fetchone()

    def rolled_back_at(self) -> float | None:
        row = self._row(
            "SELECT state, rolled_back_at FROM rollout_rollout WHERE key = ?", ROLLOUT_KEY
        )
        return _timestamp(row[1]) if row and row[0] == "rolled_back" else None

    def stopped_at(self) -> float | None:
        row = self._row(
            "SELECT status, stopped_at FROM experiments_experiment WHERE key = ?", EXPERIMENT_KEY
        )
        return _timestamp(row[1]) if row and row[0] == "stopped" else None


@dataclass
class RedisWorld:
    """The test run's own database (PostgreSQL in CI) and Redis as cache and
    broker, under this test's private key prefix."""

    redis_url: str
    prefix: str
    data_dir: Path
    seeded: dict
    name: str = "redis"

    @property
    def env(self) -> dict[str, str]:
        from tests.integration.worker import database_url_of_test_db

        return {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "REDIS_URL": self.redis_url,
            "CACHE_KEY_PREFIX": self.prefix,
            "DATA_DIR": str(self.data_dir),
            "DEBUG": "1",
        }

    def worker_args(self) -> dict:
        return {
            "redis_url": self.redis_url,
            "data_dir": self.data_dir,
            "extra_env": {"CACHE_KEY_PREFIX": self.prefix},
        }

    def rolled_back_at(self) -> float | None:
        from rollout.models import Rollout

        state, at = Rollout.objects.values_list("state", "rolled_back_at").get(key=ROLLOUT_KEY)
        return _timestamp(at) if state == "rolled_back" else None

    def stopped_at(self) -> float | None:
        from experiments.models import Experiment

        status, at = Experiment.objects.values_list("status", "stopped_at").get(key=EXPERIMENT_KEY)
        return _timestamp(at) if status == "stopped" else None


# --- the measurement -----------------------------------------------------------------


@dataclass
class Answer:
    sent: float
    received: float
    old: bool  # answered from the configuration before the change


class Prober(threading.Thread):
    """Asks the other process one question after another and keeps every
    answer with the wall-clock times it was sent and received. First about
    fresh units, remembering those answered from the old configuration; once
    told to `watch()`, about those units in turn, so that every answer shows
    whether the other process still holds the old configuration."""

    def __init__(self, ask: Callable[[str], bool]) -> None:
        super().__init__(daemon=True)
        self.ask = ask
        self.answers: list[Answer] = []
        self.sentinels: list[str] = []
        self.error: BaseException | None = None
        self._watching = threading.Event()
        self._stop_asking = threading.Event()

    def run(self) -> None:
        n = 0
        try:
            while not self._stop_asking.is_set():
                n += 1
                watching = self._watching.is_set()
                unit = self.sentinels[n % len(self.sentinels)] if watching else f"probe-{n}"
                sent = time.time()
                old = self.ask(unit)
                self.answers.append(Answer(sent, time.time(), old))
                if old and not watching:
                    self.sentinels.append(unit)
        except BaseException as exc:  # re-raised by stop()
            self.error = exc

    def watch(self) -> None:
        self._watching.set()

    def stop(self) -> None:
        self._stop_asking.set()
        self.join(timeout=15)
        if self.error is not None:
            raise self.error


@dataclass
class Propagation:
    committed: float  # a lower bound of the commit's wall-clock time
    last_old_after_commit_ms: float | None  # the last old answer arrived this long after it
    old_answers_before: int
    answers_between: int  # asked between the commit and commit + BOUND_SECONDS
    old_fresh_units: int  # of FRESH_UNITS asked from commit + BOUND_SECONDS on
    fresh_took_s: float

    def summary(self) -> str:
        last = (
            f"{self.last_old_after_commit_ms:.0f} ms after the commit"
            if self.last_old_after_commit_ms is not None
            else "before the commit"
        )
        return (
            f"last old answer {last} ({self.answers_between} answers in the first "
            f"{BOUND_SECONDS:g} s); from {BOUND_SECONDS:g} s on, {self.old_fresh_units} of "
            f"{FRESH_UNITS} fresh units got the old answer ({self.fresh_took_s:.2f} s to ask them)"
        )


def measure_propagation(
    *,
    ask: Callable[[str], bool],
    change: Callable[[], None],
    committed_at: Callable[[], float | None],
    timeout: float = 45,
) -> Propagation:
    """Keep asking the other process (`ask(unit) -> answered from the old
    configuration?`) while `change()` is made; find when the change committed
    (`committed_at()` reads the timestamp it wrote, None before); from commit +
    BOUND_SECONDS ask about FRESH_UNITS units never asked before.

    The commit's time is taken as the later of the timestamp the change wrote
    inside its transaction and the start of the last read that did not see it
    yet (reads every 2 ms, while `change()` runs in a thread): both precede the
    real commit, so the bound is checked strictly."""
    prober = Prober(ask)
    prober.start()
    deadline = time.monotonic() + 30
    while len(prober.sentinels) < 3:
        if prober.error or time.monotonic() > deadline:
            prober.stop()
            raise AssertionError("the other process never answered from the old configuration")
        time.sleep(0.01)
    prober.watch()
    failures: list[BaseException] = []

    def make_the_change() -> None:
        try:
            change()
        except BaseException as exc:  # re-raised below
            failures.append(exc)

    changer = threading.Thread(target=make_the_change, daemon=True)
    not_seen_since = time.time()
    changer.start()
    deadline = time.monotonic() + timeout
    while True:
        started = time.time()
        at = committed_at()
        if at is not None:
            committed = max(at, not_seen_since)
            break
        not_seen_since = started
        if time.monotonic() > deadline or prober.error or failures:
            prober.stop()
            changer.join(timeout=15)
            if failures:
                raise failures[0]
            raise AssertionError(f"the change did not commit within {timeout:.0f} s")
        time.sleep(0.002)
    time.sleep(max(0.0, committed + BOUND_SECONDS - time.time()))
    prober.stop()
    changer.join(timeout=15)
    if failures:
        raise failures[0]
    fresh_started = time.time()
    assert fresh_started >= committed + BOUND_SECONDS
    old_fresh = sum(ask(f"fresh-{i}") for i in range(FRESH_UNITS))
    answers = prober.answers
    before = [a for a in answers if a.sent < committed]
    old_after = [a.received for a in answers if a.old and a.received >= committed]
    return Propagation(
        committed=committed,
        last_old_after_commit_ms=(max(old_after) - committed) * 1000 if old_after else None,
        old_answers_before=sum(a.old for a in before),
        answers_between=len(answers) - len(before),
        old_fresh_units=old_fresh,
        fresh_took_s=time.time() - fresh_started,
    )


def route_asker(base_url: str, token: str) -> Callable[[str], bool]:
    client = Client.of(base_url, token=token)

    def canary(unit_id: str) -> bool:
        answer = client.post_json(f"/api/v1/rollouts/{ROLLOUT_KEY}/route/", {"unit_id": unit_id})
        return answer["version"] == "canary"

    return canary


def assignment_asker(base_url: str, token: str) -> Callable[[str], bool]:
    client = Client.of(base_url, token=token)

    def in_experiment(unit_id: str) -> bool:
        answer = client.post_json(
            "/api/v1/assignments/", {"experiment": EXPERIMENT_KEY, "unit_id": unit_id}
        )
        return answer["in_experiment"]

    return in_experiment
