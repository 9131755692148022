"""The rollout router, as the conversation views use it.

A session keeps the version it started with, so a request about an existing session is
served (and counted by the request-metrics middleware) as that session's version, not as
whatever the router would pick for the user today. One exception: after a rollback nobody
is served the canary any more, not even a session that started on it (a rollback means the
new version must stop serving now).
"""

from __future__ import annotations

from typing import Any

from rollout import config_cache
from rollout.middleware import route_request
from rollout.router import STABLE, Route

FEATURE = "conversations"


def route_conversation(request: Any, user_id: str) -> Route:
    """Route the request and mark it for the request-metrics middleware. ``request`` may
    be DRF's Request: the mark must go on the Django request the middleware sees, and
    DRF's wrapper keeps attributes set on it to itself."""
    return route_request(getattr(request, "_request", request), FEATURE, user_id)


def is_rolled_back(route: Route) -> bool:
    if route.rollout is None or route.version != STABLE:
        return False
    config = config_cache.get_rollout(route.rollout)
    return config is not None and config.state == "rolled_back"


def served_version(route: Route, session_version: str) -> str:
    return STABLE if is_rolled_back(route) else session_version


def count_as(request: Any, version: str) -> None:
    """Count this request under ``version`` (the session's) instead of the routed one."""
    django_request = getattr(request, "_request", request)
    marked = getattr(django_request, "_rollout_metrics", None)
    if marked is not None and marked[1] != version:
        django_request._rollout_metrics = (marked[0], version)
