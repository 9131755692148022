"""Token authentication that does not query the database on every request.

DRF's TokenAuthentication loads the token and its user per request. The
assignment endpoint answers thousands of requests a second, so the resolved
user (with its permissions preloaded) is kept in process for TOKEN_TTL_SECONDS:
a deleted token or a removed permission takes effect within that time.
"""

import threading
import time

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

TOKEN_TTL_SECONDS = 30.0
_MAX_ENTRIES = 10_000

_resolved: dict[str, tuple[float, object, object]] = {}
_lock = threading.Lock()


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        now = time.monotonic()
        hit = _resolved.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        user.get_all_permissions()  # fills the user's permission cache once
        with _lock:
            if len(_resolved) >= _MAX_ENTRIES:
                _resolved.clear()
            _resolved[key] = (now + TOKEN_TTL_SECONDS, user, token)
        return user, token


def forget_tokens() -> None:
    with _lock:
        _resolved.clear()


__all__ = ["AuthenticationFailed", "CachedTokenAuthentication", "forget_tokens"]
