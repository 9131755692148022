"""The stage plan of a rollout, its lifecycle and its gate.

Pure module (standard library only, no Django): the API, the pages, the admin
and the beat run all ask these functions, so a rule lives here once.

Stage roles never depend on a stage's name:

- ``staff_only`` — share 0 %: only staff and the allow-list get the new version;
- ``canary`` — 0 < share < 100 without the experiment: the rollout's own hash decides;
- ``experiment`` — the linked experiment's assignment decides the split;
- ``full`` — share 100 %: every unit gets the new version.

A plan starts at 0 % (a new rollout never serves anyone but staff until a
person approves the first step) and ends at 100 % (the last stage means every
unit). With a linked experiment the last stage strictly between 0 and 100 %
is the experiment stage unless a stage names its role explicitly.

The lifecycle is a small state machine (``ALLOWED``): ``active`` rollouts move
through their stages, may be paused (nothing advances, routing unchanged),
rolled back (everyone on stable) and re-armed (back to the first stage), and
are completed at the last stage (the new version stays served to everyone and
the feature is free for its next rollout).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

MAX_STAGES: Final = 20
MAX_STAGE_HOURS: Final = 24 * 365
_NAME: Final = re.compile(r"^[-a-zA-Z0-9_]{1,32}$")


class PlanError(ValueError):
    """A plan, a threshold set or a lifecycle step that is not allowed; the
    message is written for the person who asked."""


class Role(StrEnum):
    STAFF_ONLY = "staff_only"
    CANARY = "canary"
    EXPERIMENT = "experiment"
    FULL = "full"


class State(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ROLLED_BACK = "rolled_back"
    COMPLETED = "completed"


class Step(StrEnum):
    """What a person (or the platform) can do to a rollout."""

    ADVANCE = "advance"
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK = "rollback"
    REARM = "rearm"
    COMPLETE = "complete"
    CHANGE_SETTINGS = "change_settings"


# From which states each step may be taken, and the state it leads to.
ALLOWED: Final[Mapping[Step, frozenset[State]]] = {
    Step.ADVANCE: frozenset({State.ACTIVE}),
    Step.PAUSE: frozenset({State.ACTIVE}),
    Step.RESUME: frozenset({State.PAUSED}),
    Step.ROLLBACK: frozenset({State.ACTIVE, State.PAUSED}),
    Step.REARM: frozenset({State.ROLLED_BACK}),
    Step.COMPLETE: frozenset({State.ACTIVE, State.PAUSED}),
    Step.CHANGE_SETTINGS: frozenset({State.ACTIVE, State.PAUSED}),
}
LEADS_TO: Final[Mapping[Step, State | None]] = {
    Step.ADVANCE: None,
    Step.PAUSE: State.PAUSED,
    Step.RESUME: State.ACTIVE,
    Step.ROLLBACK: State.ROLLED_BACK,
    Step.REARM: State.ACTIVE,
    Step.COMPLETE: State.COMPLETED,
    Step.CHANGE_SETTINGS: None,
}
# States in which the rollout still serves the new version to part of the
# traffic, so its health is evaluated and a breach rolls it back.
LIVE_STATES: Final = frozenset({State.ACTIVE, State.PAUSED})


def check_step(state: str, step: Step, *, at_last_stage: bool = False) -> State | None:
    """The state ``step`` leads to from ``state``; ``PlanError`` when not allowed."""
    current = State(state)
    if current not in ALLOWED[step]:
        allowed = " or ".join(sorted(s.value for s in ALLOWED[step]))
        raise PlanError(f"The rollout is {current.value}; {step.value} needs it {allowed}.")
    if step is Step.COMPLETE and not at_last_stage:
        raise PlanError("Only a rollout at its last (100 %) stage can be completed.")
    return LEADS_TO[step]


@dataclass(frozen=True)
class Stage:
    name: str
    percent: float
    min_duration_hours: float
    needs_approval: bool
    role: Role

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "percent": self.percent,
            "min_duration_hours": self.min_duration_hours,
            "needs_approval": self.needs_approval,
            "role": self.role.value,
        }

    @property
    def label(self) -> str:
        return f"{self.name} ({self.percent:g} %)"


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]

    @classmethod
    def parse(cls, raw: Sequence[Mapping[str, Any]], *, has_experiment: bool) -> Plan:
        """Validate a plan as given by a person (list of dicts) and give every
        stage its role. ``PlanError`` names the first problem."""
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
            raise PlanError("stages must be a non-empty list.")
        if len(raw) > MAX_STAGES:
            raise PlanError(f"A plan has at most {MAX_STAGES} stages (got {len(raw)}).")
        if len(raw) < 2:
            raise PlanError("A plan needs at least two stages: 0 % and 100 %.")
        parsed: list[dict[str, Any]] = []
        for position, item in enumerate(raw, start=1):
            if not isinstance(item, Mapping):
                raise PlanError(f"stage {position} must be an object.")
            parsed.append(_parse_stage(item, position))
        names = [s["name"] for s in parsed]
        if len(set(names)) != len(names):
            raise PlanError("stage names must be unique.")
        percents = [s["percent"] for s in parsed]
        if any(b < a for a, b in itertools.pairwise(percents)):
            raise PlanError("stage shares must not decrease along the plan.")
        if percents[0] != 0:
            raise PlanError(
                f"the first stage '{names[0]}' must be at 0 %: a new rollout serves only staff "
                "until the first step is approved."
            )
        if percents[-1] != 100:
            raise PlanError(f"the last stage '{names[-1]}' must be at 100 %.")
        return cls(tuple(_with_roles(parsed, has_experiment=has_experiment)))

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def index_of(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise PlanError(f"stage '{name}' is not in the plan ({', '.join(self.names())}).")

    def stage(self, name: str) -> Stage:
        return self.stages[self.index_of(name)]

    def first(self) -> Stage:
        return self.stages[0]

    def next_after(self, name: str) -> Stage | None:
        index = self.index_of(name)
        return self.stages[index + 1] if index + 1 < len(self.stages) else None

    def is_last(self, name: str) -> bool:
        return self.index_of(name) == len(self.stages) - 1

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.stages]


def _parse_stage(item: Mapping[str, Any], position: int) -> dict[str, Any]:
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise PlanError(
            f"stage {position}: name must be 1–32 letters, digits, '-' or '_' (got {name!r})."
        )
    percent = item.get("percent")
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int | float)
        or not math.isfinite(percent)
        or not 0 <= percent <= 100
    ):
        raise PlanError(f"stage '{name}': percent must be a number from 0 to 100.")
    hours = item.get("min_duration_hours", 0)
    if (
        isinstance(hours, bool)
        or not isinstance(hours, int | float)
        or not math.isfinite(hours)
        or not 0 <= hours <= MAX_STAGE_HOURS
    ):
        raise PlanError(f"stage '{name}': min_duration_hours must be from 0 to {MAX_STAGE_HOURS}.")
    needs_approval = item.get("needs_approval", True)
    if not isinstance(needs_approval, bool):
        raise PlanError(f"stage '{name}': needs_approval must be true or false.")
    role = item.get("role")
    if role is not None and role not in (Role.CANARY.value, Role.EXPERIMENT.value):
        implied = Role.STAFF_ONLY if percent == 0 else Role.FULL if percent == 100 else None
        if role == implied:
            role = None  # the share implies it
        else:
            raise PlanError(
                f"stage '{name}': role may be 'canary' or 'experiment' (got {role!r}); "
                "0 % and 100 % stages take their role from the share."
            )
    return {
        "name": name,
        "percent": float(percent),
        "min_duration_hours": float(hours),
        "needs_approval": needs_approval,
        "role": role,
    }


def _with_roles(parsed: list[dict[str, Any]], *, has_experiment: bool) -> list[Stage]:
    partial = [i for i, s in enumerate(parsed) if 0 < s["percent"] < 100]
    explicit = [i for i in partial if parsed[i]["role"] == Role.EXPERIMENT.value]
    if len(explicit) > 1:
        raise PlanError("at most one stage can be the experiment stage.")
    if explicit and not has_experiment:
        name = parsed[explicit[0]]["name"]
        raise PlanError(f"stage '{name}' is an experiment stage but no experiment is linked.")
    experiment_at: int | None = None
    if has_experiment:
        if explicit:
            experiment_at = explicit[0]
        else:
            candidates = [i for i in partial if parsed[i]["role"] != Role.CANARY.value]
            if not candidates:
                raise PlanError(
                    "a linked experiment needs a stage strictly between 0 % and 100 % to run in."
                )
            experiment_at = candidates[-1]
    stages = []
    for index, s in enumerate(parsed):
        if s["percent"] == 0:
            role = Role.STAFF_ONLY
        elif s["percent"] == 100:
            role = Role.FULL
        elif index == experiment_at:
            role = Role.EXPERIMENT
        else:
            role = Role.CANARY
        stages.append(
            Stage(
                name=s["name"],
                percent=s["percent"],
                min_duration_hours=s["min_duration_hours"],
                needs_approval=s["needs_approval"],
                role=role,
            )
        )
    # The first step above 0 % always needs a person's approval, whatever the
    # plan says: otherwise a plan alone could put a version in front of users.
    first_live = next((i for i, s in enumerate(stages) if s.percent > 0), None)
    if first_live is not None and not stages[first_live].needs_approval:
        raise PlanError(
            f"stage '{stages[first_live].name}' is the first above 0 %: it always needs an "
            "executive's approval (needs_approval must be true)."
        )
    return stages


# -- thresholds --------------------------------------------------------------------------

THRESHOLD_KEYS: Final = ("max_error_rate", "max_p95_ms", "min_availability")
MAX_LATENCY_MS: Final = 600_000.0


def parse_thresholds(raw: Mapping[str, Any], *, what: str) -> dict[str, float]:
    """One threshold set (SLA or rollback): rates in [0, 1), latency in (0, 600 000] ms."""
    if not isinstance(raw, Mapping):
        raise PlanError(f"{what} must be an object.")
    unknown = sorted(set(raw) - set(THRESHOLD_KEYS))
    if unknown:
        raise PlanError(f"{what}: unknown field(s) {', '.join(map(str, unknown))}.")
    values: dict[str, float] = {}
    for key in THRESHOLD_KEYS:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PlanError(f"{what}.{key} must be a number.")
        if not math.isfinite(value):
            raise PlanError(f"{what}.{key} must be finite.")
        values[key] = float(value)
    for key in ("max_error_rate", "min_availability"):
        if not 0 <= values[key] < 1:
            raise PlanError(f"{what}.{key} must be in [0, 1) (a rate, e.g. 0.005 for 0.5 %).")
    if not 0 < values["max_p95_ms"] <= MAX_LATENCY_MS:
        raise PlanError(f"{what}.max_p95_ms must be in (0, {MAX_LATENCY_MS:g}] ms.")
    return values


def check_threshold_bands(sla: Mapping[str, float], rollback: Mapping[str, float]) -> None:
    """The rollback band must be looser than the SLA on every rule, so that a
    version can be outside its SLA (held) before it is rolled back."""
    if not sla["max_error_rate"] < rollback["max_error_rate"]:
        raise PlanError("rollback.max_error_rate must be above sla.max_error_rate.")
    if not sla["max_p95_ms"] < rollback["max_p95_ms"]:
        raise PlanError("rollback.max_p95_ms must be above sla.max_p95_ms.")
    if not sla["min_availability"] > rollback["min_availability"]:
        raise PlanError("rollback.min_availability must be below sla.min_availability.")


def loosened(old: Mapping[str, float], new: Mapping[str, float]) -> list[str]:
    """Rollback thresholds made more tolerant: each rule that now rolls back later."""
    changes = []
    for key in ("max_error_rate", "max_p95_ms"):
        if new[key] > old[key]:
            changes.append(f"{key} {old[key]:g} → {new[key]:g}")
    if new["min_availability"] < old["min_availability"]:
        changes.append(
            f"min_availability {old['min_availability']:g} → {new['min_availability']:g}"
        )
    return changes


def settings_change_problems(
    *,
    old_plan: Plan,
    new_plan: Plan,
    stage: str,
    old_rollback: Mapping[str, float],
    new_rollback: Mapping[str, float],
) -> tuple[list[str], list[str]]:
    """Check a change of a live rollout's plan and rollback thresholds.

    Returns (errors, needs_executive): errors make the change impossible (the
    current stage must stay, with its share, so nobody moves); needs_executive
    lists what only someone with the approve permission may do — loosen the
    rollback thresholds or drop an approval step above 0 %."""
    errors: list[str] = []
    current = old_plan.stage(stage)
    try:
        kept = new_plan.stage(stage)
    except PlanError:
        errors.append(f"the current stage '{stage}' must stay in the plan.")
    else:
        if kept.percent != current.percent:
            errors.append(
                f"the current stage '{stage}' must keep its share ({current.percent:g} %); "
                "a new share is a transition."
            )
        if kept.role != current.role:
            errors.append(f"the current stage '{stage}' must keep its role ({current.role}).")
    needs_executive = [f"rollback {c}" for c in loosened(old_rollback, new_rollback)]
    old_approval = {s.name: s.needs_approval for s in old_plan.stages}
    for s in new_plan.stages:
        if s.percent > 0 and not s.needs_approval and old_approval.get(s.name, True):
            needs_executive.append(f"stage '{s.name}' no longer needs approval")
    return errors, needs_executive


# -- the gate ----------------------------------------------------------------------------

HEALTH_BAD: Final = frozenset({"degraded", "failing"})


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Gate:
    """Whether the rollout may move to ``to_stage`` now, as a checklist."""

    to_stage: Stage | None
    checks: tuple[Check, ...]
    needs_approval: bool

    @property
    def ready(self) -> bool:
        return self.to_stage is not None and all(c.ok for c in self.checks)

    def blocking(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def summary(self) -> str:
        return "; ".join(c.detail for c in self.blocking())

    def to_dict(self) -> dict[str, Any]:
        return {
            "to_stage": self.to_stage.name if self.to_stage else None,
            "ready": self.ready,
            "needs_approval": self.needs_approval,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class Evidence:
    """What the gate reads, gathered by the service.

    ``stage_health`` is the verdict on the stage's cumulative record since it
    was entered (promotion); ``window_health`` the sliding window's (fast
    rollback — here only a degraded or failing window counts, never one that
    is short of traffic). ``canary_worse``: the canary-vs-stable comparison on
    the stage record (None: not judged). ``experiment_verdict``: the linked
    experiment's latest decision (None: none computed yet)."""

    state: str
    stage: str
    entered_at: datetime | None
    now: datetime
    stage_health: str
    window_health: str
    stage_health_reasons: tuple[str, ...] = ()
    window_health_reasons: tuple[str, ...] = ()
    canary_worse: bool | None = None
    comparison_detail: str = ""
    experiment_key: str | None = None
    experiment_verdict: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _hours(h: float) -> str:
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def evaluate_gate(plan: Plan, evidence: Evidence) -> Gate:
    """The one gate: for a request, an approval and the beat run alike."""
    current = plan.stage(evidence.stage)
    target = plan.next_after(evidence.stage)
    checks: list[Check] = []

    state_ok = evidence.state == State.ACTIVE
    checks.append(
        Check(
            "state",
            state_ok,
            "the rollout is active" if state_ok else f"the rollout is {evidence.state}",
        )
    )
    if target is None:
        checks.append(
            Check(
                "next_stage",
                False,
                f"{current.label} is the last stage: complete the rollout instead",
            )
        )
        return Gate(None, tuple(checks), needs_approval=False)

    hours = current.min_duration_hours
    if hours and evidence.entered_at is not None:
        ready_at = evidence.entered_at + timedelta(hours=hours)
        left = (ready_at - evidence.now).total_seconds() / 3600
        if left > 0:
            checks.append(
                Check(
                    "time_in_stage",
                    False,
                    f"{current.name} needs {_hours(hours)} in stage; {_hours(left)} left",
                )
            )
        else:
            checks.append(
                Check("time_in_stage", True, f"{current.name} has run its minimum {_hours(hours)}")
            )
    else:
        checks.append(Check("time_in_stage", True, f"{current.name} has no minimum duration"))

    checks.append(_health_check(current, evidence))
    if evidence.canary_worse:
        checks.append(
            Check(
                "canary_vs_stable",
                False,
                evidence.comparison_detail or "the canary is worse than stable",
            )
        )
    else:
        checks.append(
            Check(
                "canary_vs_stable",
                True,
                evidence.comparison_detail
                or (
                    "not judged yet"
                    if evidence.canary_worse is None
                    else "the canary is not significantly worse than stable"
                ),
            )
        )

    if current.role is Role.EXPERIMENT:
        verdict = evidence.experiment_verdict
        ok = verdict == "success"
        checks.append(
            Check(
                "experiment",
                ok,
                f"experiment {evidence.experiment_key}: decision {verdict or 'not computed yet'}"
                + ("" if ok else ", needs success"),
            )
        )

    if target.needs_approval:
        detail = (
            f"{current.percent:g} % → {target.percent:g} % needs an executive's approval "
            "(someone other than the requester)"
        )
    else:
        detail = (
            f"{current.percent:g} % → {target.percent:g} % is applied by the platform "
            "once the gate holds"
        )
    checks.append(Check("approval", True, detail))
    return Gate(target, tuple(checks), needs_approval=target.needs_approval)


def _health_check(current: Stage, evidence: Evidence) -> Check:
    window_bad = evidence.window_health in HEALTH_BAD
    if window_bad:
        reason = evidence.window_health_reasons[0] if evidence.window_health_reasons else ""
        return Check(
            "health",
            False,
            f"the last minutes are {evidence.window_health}" + (f": {reason}" if reason else ""),
        )
    verdict = evidence.stage_health
    reason = evidence.stage_health_reasons[0] if evidence.stage_health_reasons else ""
    if current.role is Role.STAFF_ONLY:
        # Staff traffic is small by design: too little data for a verdict is
        # expected here, but a degraded or failing record still blocks.
        ok = verdict not in HEALTH_BAD
        detail = f"staff-only stage record {verdict}" + (f": {reason}" if reason and not ok else "")
        return Check("health", ok, detail)
    ok = verdict == "healthy"
    if ok:
        return Check("health", True, f"stage record since {current.name} began is healthy")
    return Check("health", False, f"stage record is {verdict}" + (f": {reason}" if reason else ""))


def evidence_against(plan: Plan, evidence: Evidence) -> list[str]:
    """Why a pending transition out of ``evidence.stage`` no longer holds —
    only evidence that turned against the step, never a shortage of traffic."""
    reasons: list[str] = []
    if evidence.window_health in HEALTH_BAD:
        reasons.append(f"health of the last minutes is {evidence.window_health}")
    if evidence.stage_health in HEALTH_BAD:
        reasons.append(f"the stage record is {evidence.stage_health}")
    if evidence.canary_worse:
        reasons.append(evidence.comparison_detail or "the canary is worse than stable")
    verdict = evidence.experiment_verdict
    if plan.stage(evidence.stage).role is Role.EXPERIMENT and verdict not in (None, "success"):
        reasons.append(f"the experiment's decision is now {evidence.experiment_verdict}")
    return reasons


def completion_due(plan: Plan, *, stage: str, entered_at: datetime | None, now: datetime) -> bool:
    """The last stage's minimum duration has passed: the platform completes the rollout."""
    if not plan.is_last(stage) or entered_at is None:
        return False
    return now >= entered_at + timedelta(hours=plan.stage(stage).min_duration_hours)
