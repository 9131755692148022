"""The seed's decision rules as a pure function (no Django import).

Given the comparisons of one experiment (per metric and treatment, with the
`significant` flag already decided by the experiment's inference mode and
multiple-testing correction), the sample-ratio check and the treatment's
service figures, answer one verdict with plain-language reasons:

- `invalid`      the sample-ratio mismatch check failed: no number can be trusted;
- `failure`      a required condition fails (error rate or P95 over its limit, a
                 primary metric significantly worse) or a guardrail metric is
                 significantly worse: roll back;
- `inconclusive` no primary metric is significantly better yet (says how many
                 more units that would take where it can tell);
- `conditional`  required conditions hold, fewer important improvements than
                 needed: optimise and re-run;
- `success`      required conditions hold and enough important improvements:
                 recommend 100 %.

Defaults are the seed's: required — a primary metric significantly better,
treatment error rate < 0.5 %, treatment P95 < 100 ms; important, at least 2 of —
adoption +10 pp, session duration +100 %, completion +5 pp, satisfaction +0.2
points.

A required service figure that is not measured (no linked rollout health, or
only one of error rate and P95) is said so in the reasons and keeps the
verdict from passing: at best `inconclusive` until it is measured. A policy
turns a requirement off by setting its limit to null.

An important threshold is judged on the interval the analysis hands over
(1 − α/m over the m important comparisons, sequential when the experiment
decides sequentially): **met** when the interval's bound on the bad side
clears the threshold (lower bound ≥ threshold for a metric where higher is
better), **likely met** when only the estimate does (shown, never counted),
**not met** otherwise. Without an interval nothing counts as met.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["success", "conditional", "failure", "inconclusive", "invalid"]
VERDICT_ORDER: tuple[Verdict, ...] = ("success", "conditional", "inconclusive", "failure")

DEFAULT_POLICY: dict[str, Any] = {
    "require_primary_significant": True,
    "max_error_rate": 0.005,
    "max_p95_ms": 100.0,
    "important_needed": 2,
    "important": [
        {"metric": "adoption", "min_absolute": 0.10, "label": "adoption +10 pp"},
        {"metric": "session_duration", "min_relative": 1.00, "label": "session duration +100 %"},
        {"metric": "completion", "min_absolute": 0.05, "label": "completion +5 pp"},
        {"metric": "satisfaction", "min_absolute": 0.20, "label": "satisfaction +0.2 points"},
    ],
}


def policy_with_defaults(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The experiment's policy: the defaults, with its own keys on top."""
    merged = dict(DEFAULT_POLICY)
    merged.update(overrides or {})
    return merged


@dataclass(frozen=True)
class MetricComparison:
    """One metric, one treatment against the control. Effects are signed as
    measured (treatment − control); `higher_is_better` says which way is good."""

    metric: str
    role: str  # primary | secondary | guardrail
    variant: str
    absolute_effect: float | None
    relative_effect: float | None
    significant: bool
    higher_is_better: bool = True
    units_needed: int | None = None
    days_needed: float | None = None
    # The interval important thresholds are judged on (see the module docstring).
    important_ci_low: float | None = None
    important_ci_high: float | None = None
    important_relative_ci_low: float | None = None
    important_relative_ci_high: float | None = None

    @property
    def improved(self) -> bool:
        return self.significant and _good_direction(self.absolute_effect, self.higher_is_better)

    @property
    def worsened(self) -> bool:
        return self.significant and _good_direction(self.absolute_effect, not self.higher_is_better)


def _good_direction(effect: float | None, higher_is_better: bool) -> bool:
    if effect is None or effect == 0 or math.isnan(effect):
        return False
    return (effect > 0) == higher_is_better


@dataclass(frozen=True)
class ServiceFigures:
    """The treatment version's service levels, from the rollout's health."""

    error_rate: float | None
    p95_ms: float | None
    source: str = "rollout health"


@dataclass
class Decision:
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    variant: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "variant": self.variant}


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %"


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


def _effect_text(c: MetricComparison) -> str:
    parts = []
    if c.absolute_effect is not None:
        parts.append(f"{c.absolute_effect:+.4g}")
    if c.relative_effect is not None:
        parts.append(f"{c.relative_effect * 100:+.1f} %")
    return " (".join(parts) + (")" if len(parts) == 2 else "")


ImportantOutcome = Literal["met", "likely met", "not met", "not measured"]


def _important_met(
    rule: Mapping[str, Any], by_metric: Mapping[str, MetricComparison]
) -> tuple[ImportantOutcome, str]:
    """One important threshold judged on its corrected interval: the bound on the
    bad side must clear it (met); the estimate alone reaching it is "likely met"."""
    label = rule.get("label") or rule["metric"]
    c = by_metric.get(rule["metric"])
    if c is None:
        return "not measured", f"{label}: not measured in this experiment"
    direction = 1 if c.higher_is_better else -1
    if "min_absolute" in rule:
        estimate, threshold = c.absolute_effect, float(rule["min_absolute"])
        low, high = c.important_ci_low, c.important_ci_high
        scale, shown_format = 1.0, "{:+.4g}"
    else:
        estimate, threshold = c.relative_effect, float(rule["min_relative"])
        low, high = c.important_relative_ci_low, c.important_relative_ci_high
        scale, shown_format = 100.0, "{:+.1f} %"

    def shown(value: float | None) -> str:
        return "n/a" if value is None else shown_format.format(value * scale)

    bound = low if direction == 1 else high
    interval = f"interval [{shown(low)}, {shown(high)}]"
    if bound is not None and direction * bound >= threshold:
        return "met", f"{label}: met ({shown(estimate)}, {interval} clears it)"
    if estimate is not None and direction * estimate >= threshold:
        return "likely met", (
            f"{label}: likely met — estimate {shown(estimate)} reaches the threshold but the "
            f"{interval} does not clear it yet"
        )
    return "not met", f"{label}: not met ({shown(estimate)}, {interval})"


def _service_checks(
    service: ServiceFigures | None, policy: Mapping[str, Any]
) -> tuple[list[str], list[str], list[str]]:
    """(failures, missing, passed) of the required service levels. A limit set to
    None in the policy is not required."""
    failures: list[str] = []
    missing: list[str] = []
    passed: list[str] = []
    source = service.source if service else "no linked rollout health"
    checks: tuple[tuple[str, Any, float | None, Callable[[float], str]], ...] = (
        ("error rate", policy.get("max_error_rate"), service.error_rate if service else None, _pct),
        ("P95 latency", policy.get("max_p95_ms"), service.p95_ms if service else None, _ms),
    )
    for name, limit, value, fmt in checks:
        if limit is None:
            continue
        if value is None:
            missing.append(
                f"required: treatment {name} not measured ({source}); the verdict cannot "
                f"pass until it is below {fmt(float(limit))}"
            )
        elif value >= limit:
            failures.append(
                f"required: treatment {name} {fmt(value)} is not below {fmt(float(limit))} "
                f"({source})"
            )
        else:
            passed.append(f"required: treatment {name} {fmt(value)} < {fmt(float(limit))}")
    return failures, missing, passed


def decide_variant(
    variant: str,
    comparisons: Sequence[MetricComparison],
    *,
    service: ServiceFigures | None,
    policy: Mapping[str, Any],
) -> Decision:
    """The verdict of one treatment variant (SRM is handled by `decide`)."""
    mine = [c for c in comparisons if c.variant == variant]
    primaries = [c for c in mine if c.role == "primary"]
    reasons: list[str] = []
    failures: list[str] = []

    for c in mine:
        if c.role == "guardrail" and c.worsened:
            failures.append(f"guardrail {c.metric} is significantly worse: {_effect_text(c)}")
        if c.role == "primary" and c.worsened:
            failures.append(f"primary metric {c.metric} is significantly worse: {_effect_text(c)}")

    service_failures, missing, passed = _service_checks(service, policy)
    failures.extend(service_failures)
    reasons.extend(missing + passed)

    if failures:
        return Decision("failure", failures + reasons, variant)

    improved = [c for c in primaries if c.improved]
    if policy.get("require_primary_significant", True):
        if not primaries:
            return Decision(
                "inconclusive",
                ["required: the experiment has no primary metric", *reasons],
                variant,
            )
        if not improved:
            waiting = []
            for c in primaries:
                text = (
                    f"primary metric {c.metric} is not significantly better yet ({_effect_text(c)})"
                )
                if c.units_needed:
                    text += f"; about {c.units_needed:,} more units needed"
                    if c.days_needed is not None:
                        text += f" (≈ {c.days_needed:.1f} days at the current rate)"
                waiting.append(text)
            return Decision("inconclusive", waiting + reasons, variant)
        reasons.insert(
            0,
            "required: primary metric "
            + ", ".join(f"{c.metric} {_effect_text(c)}" for c in improved)
            + " significantly better",
        )

    by_metric = {c.metric: c for c in mine}
    rules = policy.get("important") or []
    needed = int(policy.get("important_needed", 2))
    outcomes = [_important_met(rule, by_metric) for rule in rules]
    met = sum(1 for outcome, _ in outcomes if outcome == "met")
    likely = sum(1 for outcome, _ in outcomes if outcome == "likely met")
    reasons.extend(f"important: {text}" for _, text in outcomes)
    likely_text = f"; {likely} more likely met but not yet clear of the threshold" if likely else ""
    if missing:
        return Decision(
            "inconclusive",
            [
                "a required service figure is not measured: the verdict cannot pass "
                f"({met} of {len(rules)} important improvements met{likely_text})",
                *reasons,
            ],
            variant,
        )
    if met >= needed:
        reasons.insert(
            0, f"{met} of {len(rules)} important improvements met (≥ {needed} needed){likely_text}"
        )
        return Decision("success", reasons, variant)
    reasons.insert(
        0,
        f"only {met} of {len(rules)} important improvements met ({needed} needed){likely_text}: "
        "optimise and re-run",
    )
    return Decision("conditional", reasons, variant)


def decide(
    comparisons: Sequence[MetricComparison],
    *,
    variants: Sequence[str],
    srm_flagged: bool,
    srm_p_value: float | None = None,
    service: ServiceFigures | None = None,
    policy: Mapping[str, Any] | None = None,
) -> Decision:
    """The experiment's verdict: SRM first, then the best treatment's verdict
    (success > conditional > inconclusive > failure); a failing treatment is
    named in the reasons even when another one succeeds."""
    policy = policy_with_defaults(policy)
    if srm_flagged:
        shown = f" (p = {srm_p_value:.2g})" if srm_p_value is not None else ""
        return Decision(
            "invalid",
            [
                f"sample ratio mismatch{shown}: the observed split differs from the configured "
                "weights, so the comparison cannot be trusted; fix the assignment or exposure "
                "logging and restart"
            ],
        )
    if not variants:
        return Decision("inconclusive", ["the experiment has no treatment variant"])
    per_variant = [decide_variant(v, comparisons, service=service, policy=policy) for v in variants]
    best = min(per_variant, key=lambda d: VERDICT_ORDER.index(d.verdict))
    reasons = list(best.reasons)
    if len(per_variant) > 1:
        reasons = [f"best treatment: {best.variant}", *reasons]
        reasons += [
            f"{d.variant}: {d.verdict} — {d.reasons[0]}"
            for d in per_variant
            if d is not best and d.reasons
        ]
    return Decision(best.verdict, reasons, best.variant)
