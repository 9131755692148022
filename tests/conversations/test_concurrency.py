"""Two (or more) messages sent to one session at once get consecutive indexes in order,
each reply right after its own message; two starts at once give one session."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import pytest
from django.db import connection

from conversations.models import ConversationSession, Turn
from conversations.responders.base import Reply, last_user_message
from conversations.services import sessions, turns

pytestmark = pytest.mark.django_db(transaction=True)


class SlowEcho:
    """Takes a while, so that the messages really overlap."""

    backend = "echo"

    def respond(self, messages: Sequence[Mapping[str, str]], *, facts: Mapping[str, str]) -> Reply:
        time.sleep(0.05)
        return Reply(f"echo: {last_user_message(messages)}", 1, self.backend)


def run_at_once(n: int, work) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_messages_sent_at_once_get_consecutive_indexes_each_reply_after_its_message():
    session = sessions.start_session(user_id="mina-42", topic="career", version="canary").session

    def send(i: int) -> None:
        turns.send_message(
            session_id=session.id, user_id="mina-42", text=f"message {i}", responder=SlowEcho()
        )

    assert run_at_once(6, send) == []
    stored = list(Turn.objects.filter(session=session).order_by("index"))
    assert [t.index for t in stored] == list(range(12))
    assert [t.role for t in stored] == ["user", "assistant"] * 6
    for message, reply in zip(stored[::2], stored[1::2], strict=True):
        assert reply.text == f"echo: {message.text}"
    assert sorted(t.text for t in stored[::2]) == [f"message {i}" for i in range(6)]
    assert ConversationSession.objects.get(id=session.id).next_turn_index == 12


def test_starts_at_once_for_the_same_user_and_topic_give_one_session():
    results: list[sessions.StartResult] = []

    def start(i: int) -> None:
        results.append(sessions.start_session(user_id="mina-42", topic="career", version="canary"))

    assert run_at_once(5, start) == []
    assert ConversationSession.objects.count() == 1
    assert len({r.session.id for r in results}) == 1
    assert sum(not r.resumed for r in results) == 1
