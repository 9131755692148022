"""How the health evaluation and the canary comparison write numbers in
their reasons: the platform's one wording module (common.wording), under the
names these modules use. Pure module."""

from common.wording import count, limit_ms, ms, percent, percents

__all__ = ["count", "limit_ms", "ms", "percent", "percents"]
