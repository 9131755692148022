"""Conversation turn overhead excluding the responder, with 1 000 turns of history.

One v2 session whose history holds 1 000 turns (mentee questions and mentor answers taken
from the knowledge base, with the mentee's facts remembered) gets `--turns` more messages
through `conversations.services.turns.send_message`, answered by a responder that returns
a knowledge-base-sized answer instantly: what is timed is everything the platform does
around the responder (row lock and index reservation, storing both turns, fact extraction
and upsert, reading memory, planning the context within the 1 500-token budget, rolling the
summary, the compare-and-set of the summary). Figures: p50 / p95 / p99 per turn; the same
through the HTTP API in process (authentication, validation, routing, rendering included);
and v1 (single turn, no memory) for comparison.

On PostgreSQL (a fresh database) when `psql` reaches 127.0.0.1:5432, else on SQLite.

    .venv/bin/python bench/bench_conversations.py [--turns 500] [--history 1000] [--sqlite]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import bench_env, fresh_database, manage

USER = "bench-mentee"


def postgres_available() -> bool:
    if not shutil.which("psql"):
        return False
    probe = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", "select 1"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "n": len(ordered),
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


class InstantResponder:
    """Answers at once with a knowledge-base answer (so replies have a realistic size)."""

    backend = "instant"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls = 0

    def respond(self, messages, *, facts):
        from conversations.responders.base import Reply

        self.calls += 1
        return Reply(self.answers[self.calls % len(self.answers)], 200, self.backend)


def make_history(version: str, history: int, entries) -> int:
    """A session with `history` turns already stored, as after a long conversation."""
    from conversations.memory import count_tokens
    from conversations.models import Turn
    from conversations.services import sessions

    session = sessions.start_session(user_id=USER, topic=f"bench-{version}", version=version)
    session = session.session
    rows = []
    for i in range(history):
        entry = entries[(i // 2) % len(entries)]
        text = entry.question if i % 2 == 0 else entry.answer
        role = "user" if i % 2 == 0 else "assistant"
        rows.append(Turn(session=session, index=i, role=role, text=text, tokens=count_tokens(text)))
    Turn.objects.bulk_create(rows, batch_size=1000)
    session.next_turn_index = history
    session.save(update_fields=["next_turn_index"])
    return session.id


def messages_for(entries, n: int) -> list[str]:
    facts = [
        "My name is Mina and I want to become a data scientist.",
        "I'm a junior data analyst with 2 years of experience.",
        "I prefer video courses and hands-on projects.",
    ]
    texts = []
    for i in range(n):
        if i % 10 == 0:
            texts.append(facts[(i // 10) % len(facts)])
        else:
            texts.append(entries[(i * 7) % len(entries)].question)
    return texts


def time_service(session_id: int, texts: list[str], responder) -> list[float]:
    from conversations.services import turns

    samples = []
    for text in texts:
        started = time.perf_counter()
        turns.send_message(session_id=session_id, user_id=USER, text=text, responder=responder)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def queries_per_turn(session_id: int, text: str, responder) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations.services import turns

    with CaptureQueriesContext(connection) as captured:
        turns.send_message(session_id=session_id, user_id=USER, text=text, responder=responder)
    return len(captured.captured_queries)


def time_api(session_id: int, texts: list[str], responder) -> list[float]:
    """The same turn through POST /api/v2/conversations/{id}/messages/ in process."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from conversations.services import backend

    user = User.objects.create_user("bench-integration")
    user.groups.add(Group.objects.get(name="Integrations"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    backend.configured_responder = lambda: responder  # the instant one, for the bench only
    url = f"/api/v2/conversations/{session_id}/messages/"
    samples = []
    for text in texts:
        started = time.perf_counter()
        answer = client.post(url, {"user_id": USER, "text": text}, "json", HTTP_HOST="127.0.0.1")
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.content
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--sqlite", action="store_true", help="even if PostgreSQL is there")
    args = parser.parse_args()

    if not args.sqlite and postgres_available():
        database = "ion_bench_conversations"
        fresh_database(database)
        env = bench_env(database)
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        engine = "postgresql"
    else:
        env = bench_env("unused")
        env.pop("DATABASE_URL")
        env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1")
        env["DATA_DIR"] = tempfile.mkdtemp(prefix="ion-bench-conv-")
        engine = "sqlite"
    os.environ.update(env)
    if engine == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    manage(env, "migrate", "--noinput")

    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # no query log in the timed loops
    # A rollout at the full stage: the API serves the session as v2, as the service does.
    from conversations.models import Summary
    from conversations.responders.offline import KnowledgeBaseResponder
    from tests.factories import make_rollout

    make_rollout("conversations-bench", feature="conversations", stage="full")
    entries = KnowledgeBaseResponder().entries
    responder = InstantResponder([e.answer for e in entries])
    texts = messages_for(entries, args.turns)

    v2 = make_history("canary", args.history, entries)
    started = time.perf_counter()
    time_service(v2, ["Hello again, where were we?"], responder)
    first_roll_ms = (time.perf_counter() - started) * 1000  # folds the whole imported history
    time_service(v2, texts[:20], responder)  # warm-up
    service = percentiles(time_service(v2, texts, responder))
    api = percentiles(time_api(v2, texts, responder))
    queries = queries_per_turn(v2, texts[1], responder)
    summary = Summary.objects.get(session_id=v2)

    v1 = make_history("stable", args.history, entries)
    time_service(v1, texts[:20], responder)
    v1_service = percentiles(time_service(v1, texts, responder))

    result = {
        "database": engine,
        "history_turns": args.history,
        "v2_service_turn": service,
        "v2_api_turn_in_process": api,
        "v2_queries_per_turn": queries,
        "v2_first_turn_after_importing_history_ms": round(first_roll_ms, 1),
        "v2_summary_covers_up_to": summary.up_to_index,
        "v1_service_turn": v1_service,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
