"""The one validation boundary for what comes in from outside: request bodies,
batch items, query parameters and path segments.

Pure (no Django import). Each check takes the raw value and returns the clean
one or raises `Invalid` with a message for a person. Callers decide what a
refusal becomes: a per-item rejection in a batch (experiments.services.ingestion),
a 400 (common.api turns `Invalid` into one; the serializer fields there wrap
these checks), or a message on a page.

The bounds are chosen so that nothing accepted can break a later step:
- text: no NUL byte (PostgreSQL refuses it in text and jsonb) and no lone
  surrogate (not encodable as UTF-8), at most the column's length;
- numbers: finite and within ±1e15, so that sums and sums of squares over
  millions of units stay far inside a double (1e15² × 1e7 units ≈ 1e37);
- variant weights: within (0, 1e6], so that their sum never overflows;
- integers: within the column (64-bit unless said otherwise);
- timestamps: within [2000-01-01, now + 1 day] in UTC (a year-1 time with
  a +14:00 offset is year 0 in UTC, which Python cannot read back);
- JSON documents kept as they are (attributes, payloads): at most 20 levels,
  finite numbers, clean strings; a whole body at most 64 levels.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_ABS_VALUE = 1e15
MAX_WEIGHT = 1e6
MAX_JSON_DEPTH = 20
MAX_BODY_DEPTH = 64
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Integer literals with more digits than a 64-bit integer are read as floats
# (so 1 followed by 400 zeros is infinite and refused like 1e400); reading
# them as int could exceed Python's 4 300-digit conversion limit.
_INT_LITERAL_DIGITS = 19


class Invalid(ValueError):
    """A value from outside was refused; `message` is for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- text ----------------------------------------------------------------------------


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "Null characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        return f"Surrogate characters are not allowed: U+{ord(bad):X}."
    return None


def check_text(raw: Any, *, max_length: int, numbers_as_text: bool = False) -> str:
    """A required, non-blank string of at most `max_length` characters.
    With `numbers_as_text`, an integer is taken in its text form (numeric
    user ids are common)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise Invalid("This field is required.")
    if numbers_as_text and isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise Invalid("Must be a string.")
    if len(raw) > max_length:
        raise Invalid(f"Must be at most {max_length} characters (got {len(raw)}).")
    problem = text_problem(raw)
    if problem:
        raise Invalid(problem)
    return raw


_KEY = re.compile(r"[-a-zA-Z0-9_]+")


def check_key(raw: Any, *, max_length: int = 64) -> str:
    """The key of an object (experiment, metric, rollout): a slug, as the
    models' SlugField allows, so that an impossible key is refused before
    any lookup (it also goes into cache keys)."""
    value = check_text(raw, max_length=max_length)
    if not _KEY.fullmatch(value):
        raise Invalid("Must be a key: letters, digits, '-' or '_'.")
    return value


def query_text(raw: str | None, *, max_length: int = 200) -> str:
    """A query parameter or path segment used as text ("" when absent)."""
    if not raw:
        return ""
    if len(raw) > max_length:
        raise Invalid(f"Must be at most {max_length} characters (got {len(raw)}).")
    problem = text_problem(raw)
    if problem:
        raise Invalid(problem)
    return raw


# --- numbers -------------------------------------------------------------------------


def check_number(raw: Any, *, low: float = -MAX_ABS_VALUE, high: float = MAX_ABS_VALUE) -> float:
    """A finite JSON number within [low, high] (default ±1e15), as a float."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Invalid("Must be a number.")
    try:
        value = float(raw)
    except OverflowError as exc:
        raise Invalid("Must be a finite number (not NaN or infinite).") from exc
    if not math.isfinite(value):
        raise Invalid("Must be a finite number (not NaN or infinite).")
    if not low <= value <= high:
        raise Invalid(f"Must be between {low:g} and {high:g}.")
    return value


def check_weight(raw: Any) -> float:
    """A variant weight: a finite number in (0, 1e6]."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Invalid("Must be a number.")
    try:
        value = float(raw)
    except OverflowError as exc:
        raise Invalid(f"Must be greater than 0 and at most {MAX_WEIGHT:g}.") from exc
    if not (math.isfinite(value) and 0 < value <= MAX_WEIGHT):
        raise Invalid(f"Must be greater than 0 and at most {MAX_WEIGHT:g}.")
    return value


def check_integer(raw: Any, *, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """A whole number within [low, high] (default: a 64-bit column)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Invalid("Must be a whole number.")
    if not low <= raw <= high:
        raise Invalid(f"Must be between {low} and {high}.")
    return raw


# --- time ----------------------------------------------------------------------------


def check_timestamp(value: datetime, *, now: datetime) -> datetime:
    """An aware date-time within [2000-01-01, now + 1 day], in UTC. A naive
    one is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-23:00 is year 10000 in UTC
        raise Invalid("is out of range") from exc
    if value < EARLIEST_TIMESTAMP:
        raise Invalid(f"is before {EARLIEST_TIMESTAMP:%Y-%m-%d}")
    if value > now + MAX_FUTURE:
        raise Invalid("is more than 24 hours in the future")
    return value


def parse_timestamp(raw: Any, *, now: datetime) -> datetime:
    """ISO 8601 text (a missing offset means UTC) or seconds since the epoch,
    within the range of `check_timestamp`. Messages complete "Timestamp …"."""
    if isinstance(raw, bool):
        raise Invalid("must be an ISO 8601 date-time or seconds since the epoch")
    if isinstance(raw, int | float):
        try:
            if not math.isfinite(raw):
                raise Invalid("must be a finite number of seconds since the epoch")
            value = datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            if isinstance(exc, Invalid):
                raise
            raise Invalid("is out of range") from exc
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            shown = raw[:40].replace("\x00", "\\x00")
            raise Invalid(f"'{shown}' is not an ISO 8601 date-time") from exc
    else:
        raise Invalid("must be an ISO 8601 date-time or seconds since the epoch")
    return check_timestamp(value, now=now)


# --- JSON ----------------------------------------------------------------------------


def json_depth(value: Any, *, stop_above: int = MAX_BODY_DEPTH) -> int:
    """Nesting depth of parsed JSON (plain dicts and lists; a scalar is 0,
    `{}` is 1), counted level by level without recursion; stops once above
    `stop_above`. ≈ 8 ms for a batch of 10 000 events."""
    depth = 0
    level = [value] if value.__class__ is dict or value.__class__ is list else []
    while level:
        depth += 1
        if depth > stop_above:
            return depth
        below: list[Any] = []
        for node in level:
            children = node.values() if node.__class__ is dict else node
            below += [c for c in children if c.__class__ is dict or c.__class__ is list]
        level = below
    return depth


def check_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document to keep as it is (attributes, payloads): at most
    `max_depth` levels, finite numbers within ±1e15 (or integers within
    64 bits), keys and strings that can be stored."""
    if json_depth(value, stop_above=max_depth) > max_depth:
        raise Invalid(f"Must be nested at most {max_depth} levels deep.")
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise Invalid("Keys must be strings.")
                problem = text_problem(key)
                if problem:
                    raise Invalid(f"Key {key[:40]!r}: {problem}")
                stack.append(child)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            problem = text_problem(node)
            if problem:
                raise Invalid(problem)
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not INT64_MIN <= node <= INT64_MAX:
                raise Invalid("Numbers must fit in 64 bits.")
        elif isinstance(node, float):
            if not math.isfinite(node) or abs(node) > MAX_ABS_VALUE:
                raise Invalid(
                    f"Numbers must be finite and within ±{MAX_ABS_VALUE:g} (not NaN or infinite)."
                )
        else:
            raise Invalid(f"Unsupported value of type {type(node).__name__}.")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range; numbers must be finite")
    return value


def _int_literal(text: str) -> int | float:
    digits = len(text) - (text[0] == "-")
    return int(text) if digits <= _INT_LITERAL_DIGITS else float(text)


def _strict_int_literal(text: str) -> int | float:
    return _finite_float(text) if len(text) - (text[0] == "-") > _INT_LITERAL_DIGITS else int(text)


def parse_json(raw: bytes | str, *, allow_non_finite: bool = False) -> Any:
    """Parse a request body. Strict by default: NaN, Infinity and numbers
    that overflow a double (1e400) are a parse error. With `allow_non_finite`
    (batch endpoints), they parse as floats, so that the item holding one is
    refused on its own. Bodies nested more than MAX_BODY_DEPTH levels, however
    deep, are refused here rather than by a RecursionError further on."""
    parse_float: Callable[[str], float] = float if allow_non_finite else _finite_float
    parse_int = _int_literal if allow_non_finite else _strict_int_literal
    try:
        value = json.loads(
            raw,
            parse_constant=float if allow_non_finite else _refuse_constant,
            parse_float=parse_float,
            parse_int=parse_int,
        )
    except RecursionError as exc:
        raise Invalid(f"JSON parse error - nested more than {MAX_BODY_DEPTH} levels deep") from exc
    except ValueError as exc:  # also UnicodeDecodeError
        raise Invalid(f"JSON parse error - {exc}") from exc
    if json_depth(value) > MAX_BODY_DEPTH:
        raise Invalid(f"JSON parse error - nested more than {MAX_BODY_DEPTH} levels deep")
    return value
