"""Upkeep of the embedded default's broker, kombu's SQLAlchemy transport on a
SQLite file (config/settings.py).

The transport marks a message it hands to a worker as invisible and never
deletes it, so the file grows with every task (≈ 35 rows a minute under the
soak of bench/soak_embedded.py). kombu never reads an invisible row again: it
neither redelivers it (the worker holds an unacknowledged message in memory,
and a worker killed with it loses it) nor counts it. So deleting the invisible
rows changes nothing that any worker sees, and each worker does it when it
starts."""

import logging
import sqlite3

logger = logging.getLogger(__name__)

URL_PREFIX = "sqla+sqlite:///"
LOCK_TIMEOUT_S = 20


def forget_delivered_messages(broker_url: str) -> int:
    """Delete the delivered messages of the broker at `broker_url`; returns how
    many. Any other broker is left alone (0)."""
    if not broker_url.startswith(URL_PREFIX):
        return 0
    path = broker_url.removeprefix(URL_PREFIX)
    try:
        with sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=LOCK_TIMEOUT_S) as conn:
            deleted = conn.execute("DELETE FROM kombu_message WHERE visible = 0").rowcount
    except sqlite3.OperationalError as exc:  # no file or no table yet: nothing delivered
        logger.info("embedded broker not pruned: %s", exc)
        return 0
    logger.info("embedded broker: %s delivered messages forgotten", deleted)
    return deleted
