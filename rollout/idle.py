"""Whether a rollout is idle: its latest health window saw no request at
all. An idle rollout is not "broken": the pages say "no traffic in the last
N minutes" instead of showing blank latency cells."""

from typing import Any


def idle_minutes(verdict: Any, rollout: Any) -> int | None:
    """The window length in minutes when the latest verdict counted no
    request in any version, else None (not evaluated yet, or traffic seen)."""
    if verdict is None:
        return None
    versions = (verdict.report or {}).get("versions") or {}
    if any((v or {}).get("requests") for v in versions.values()):
        return None
    return int(rollout.window_minutes)
