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
points. An important improvement counts when its estimate reaches the
threshold and it is significant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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


def _effect_text(c: MetricComparison) -> str:
    parts = []
    if c.absolute_effect is not None:
        parts.append(f"{c.absolute_effect:+.4g}")
    if c.relative_effect is not None:
        parts.append(f"{c.relative_effect * 100:+.1f} %")
    return " (".join(parts) + (")" if len(parts) == 2 else "")


def _important_met(
    rule: Mapping[str, Any], by_metric: Mapping[str, MetricComparison]
) -> tuple[bool, str]:
    label = rule.get("label") or rule["metric"]
    c = by_metric.get(rule["metric"])
    if c is None:
        return False, f"{label}: not measured in this experiment"
    direction = 1 if c.higher_is_better else -1
    if "min_absolute" in rule:
        estimate, threshold = c.absolute_effect, float(rule["min_absolute"])
        shown = f"{estimate:+.4g}" if estimate is not None else "n/a"
    else:
        estimate, threshold = c.relative_effect, float(rule["min_relative"])
        shown = f"{estimate * 100:+.1f} %" if estimate is not None else "n/a"
    reaches = estimate is not None and direction * estimate >= threshold
    if reaches and c.improved:
        return True, f"{label}: met ({shown}, significant)"
    if reaches:
        return False, f"{label}: estimate {shown} reaches the threshold but is not significant yet"
    return False, f"{label}: not met ({shown})"


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

    max_error, max_p95 = policy.get("max_error_rate"), policy.get("max_p95_ms")
    if service is None or (service.error_rate is None and service.p95_ms is None):
        reasons.append(
            "required: error rate and P95 latency not evaluated (no linked rollout health)"
        )
    else:
        if max_error is not None and service.error_rate is not None:
            if service.error_rate >= max_error:
                failures.append(
                    f"required: treatment error rate {_pct(service.error_rate)} is not below "
                    f"{_pct(max_error)} ({service.source})"
                )
            else:
                reasons.append(
                    f"required: treatment error rate {_pct(service.error_rate)} < {_pct(max_error)}"
                )
        if max_p95 is not None and service.p95_ms is not None:
            if service.p95_ms >= max_p95:
                failures.append(
                    f"required: treatment P95 latency {service.p95_ms:.0f} ms is not below "
                    f"{max_p95:.0f} ms ({service.source})"
                )
            else:
                reasons.append(
                    f"required: treatment P95 latency {service.p95_ms:.0f} ms < {max_p95:.0f} ms"
                )

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
    met = sum(1 for ok, _ in outcomes if ok)
    reasons.extend(f"important: {text}" for _, text in outcomes)
    if met >= needed:
        reasons.insert(0, f"{met} of {len(rules)} important improvements met (≥ {needed} needed)")
        return Decision("success", reasons, variant)
    reasons.insert(
        0,
        f"only {met} of {len(rules)} important improvements met ({needed} needed): "
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
