"""The decision policy of an experiment as it is stored: only the keys that
differ from the seed's defaults (experiments.decision.DEFAULT_POLICY), each
checked so that the decision can never raise on a stored value.

The dashboards edit the policy as fields, the API takes it as JSON; both
go through `check_decision_policy`."""

from collections.abc import Mapping
from typing import Any

from common import validation
from common.errors import DomainError
from experiments.decision import DEFAULT_POLICY, policy_with_defaults

MAX_IMPORTANT_RULES = 20
MAX_LATENCY_MS = 600_000.0
LABEL_MAX_LENGTH = 200
KNOWN_KEYS = tuple(DEFAULT_POLICY)


def _refuse(message: str) -> DomainError:
    return DomainError(message, field="decision_policy")


def _limit(raw: Any, *, name: str, low: float, high: float, low_open: bool = False) -> float | None:
    if raw is None:
        return None  # no limit on this figure
    try:
        value = validation.check_number(raw)
    except validation.Invalid as exc:
        raise _refuse(f"{name}: {exc.message}") from exc
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise _refuse(f"{name} must be in {bracket}{low:g}, {high:g}].")
    return value


def _important_rule(raw: Any, position: int, *, metric_keys: set[str] | None) -> dict[str, Any]:
    where = f"important improvement {position}"
    if not isinstance(raw, Mapping):
        raise _refuse(f"{where} must be an object.")
    unknown = sorted(set(raw) - {"metric", "min_absolute", "min_relative", "label"})
    if unknown:
        raise _refuse(f"{where}: unknown field(s) {', '.join(map(str, unknown))}.")
    try:
        metric = validation.check_key(raw.get("metric"))
    except validation.Invalid as exc:
        raise _refuse(f"{where}, metric: {exc.message}") from exc
    if metric_keys is not None and metric not in metric_keys:
        raise _refuse(f"{where}: unknown metric '{metric}'.")
    given = [k for k in ("min_absolute", "min_relative") if raw.get(k) is not None]
    if len(given) != 1:
        raise _refuse(
            f"{where} ({metric}) needs exactly one threshold: min_absolute (in the metric's "
            "units) or min_relative (a fraction of the control, 1 = +100 %)."
        )
    try:
        threshold = validation.check_number(raw[given[0]])
    except validation.Invalid as exc:
        raise _refuse(f"{where} ({metric}), {given[0]}: {exc.message}") from exc
    rule: dict[str, Any] = {"metric": metric, given[0]: threshold}
    label = raw.get("label")
    if label not in (None, ""):
        try:
            rule["label"] = validation.check_text(label, max_length=LABEL_MAX_LENGTH)
        except validation.Invalid as exc:
            raise _refuse(f"{where} ({metric}), label: {exc.message}") from exc
    return rule


def check_decision_policy(raw: Any, *, metric_keys: set[str] | None = None) -> dict[str, Any]:
    """The overrides to store for `raw` (a full policy or overrides of the
    defaults): every value checked, the keys equal to the defaults left out.
    `metric_keys`, when given, are the metrics an important rule may name.
    DomainError (400) names the first problem."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _refuse("The decision policy must be an object.")
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise _refuse(
            f"Unknown decision policy field(s) {', '.join(map(str, unknown))}; "
            f"known: {', '.join(KNOWN_KEYS)}."
        )
    full = policy_with_defaults(raw)
    if not isinstance(full["require_primary_significant"], bool):
        raise _refuse("require_primary_significant must be true or false.")
    checked: dict[str, Any] = {
        "require_primary_significant": full["require_primary_significant"],
        "max_error_rate": _limit(full["max_error_rate"], name="max_error_rate", low=0, high=1),
        "max_p95_ms": _limit(
            full["max_p95_ms"], name="max_p95_ms", low=0, high=MAX_LATENCY_MS, low_open=True
        ),
    }
    rules = full["important"]
    if not isinstance(rules, list) or len(rules) > MAX_IMPORTANT_RULES:
        raise _refuse(f"important must be a list of at most {MAX_IMPORTANT_RULES} rules.")
    checked["important"] = [
        _important_rule(rule, i, metric_keys=metric_keys) for i, rule in enumerate(rules, start=1)
    ]
    named = [r["metric"] for r in checked["important"]]
    if len(set(named)) != len(named):
        raise _refuse("Each metric can have one important-improvement rule.")
    try:
        needed = validation.check_integer(full["important_needed"], low=0, high=MAX_IMPORTANT_RULES)
    except validation.Invalid as exc:
        raise _refuse(f"important_needed: {exc.message}") from exc
    if needed > len(named):
        raise _refuse(
            f"important_needed is {needed} but only {len(named)} important improvement(s) are "
            "listed: the experiment could never succeed."
        )
    checked["important_needed"] = needed
    return {key: value for key, value in checked.items() if value != DEFAULT_POLICY.get(key)}


def full_policy(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The policy the decision applies: the defaults with the overrides on top."""
    return policy_with_defaults(overrides)
