"""The pure stage plan, state machine and gate (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from rollout.plan import (
    Evidence,
    Plan,
    PlanError,
    Role,
    State,
    Step,
    check_step,
    completion_due,
    evaluate_gate,
    evidence_against,
    parse_thresholds,
    settings_change_problems,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SEED = [
    {"name": "internal", "percent": 0},
    {"name": "canary", "percent": 5, "min_duration_hours": 48},
    {"name": "ab", "percent": 50},
    {"name": "full", "percent": 100},
]
OWN_NAMES = [
    {"name": "dogfood", "percent": 0},
    {"name": "pilot", "percent": 5},
    {"name": "everyone", "percent": 100},
]


def evidence(**overrides) -> Evidence:
    values = {
        "state": "active",
        "stage": "internal",
        "entered_at": NOW - timedelta(hours=1),
        "now": NOW,
        "stage_health": "healthy",
        "window_health": "healthy",
        "canary_worse": False,
    }
    return Evidence(**{**values, **overrides})


def test_roles_come_from_the_share_not_the_name():
    plan = Plan.parse(OWN_NAMES, has_experiment=False)
    assert [s.role for s in plan.stages] == [Role.STAFF_ONLY, Role.CANARY, Role.FULL]
    seed = Plan.parse(SEED, has_experiment=True)
    assert [s.role for s in seed.stages] == [
        Role.STAFF_ONLY,
        Role.CANARY,
        Role.EXPERIMENT,
        Role.FULL,
    ]
    renamed = [dict(s, name=f"step-{i}") for i, s in enumerate(SEED)]
    assert Plan.parse(renamed, has_experiment=True).stages[2].role is Role.EXPERIMENT


def test_an_explicit_role_picks_the_experiment_stage():
    stages = [dict(s) for s in SEED]
    stages[1]["role"] = "experiment"
    plan = Plan.parse(stages, has_experiment=True)
    assert plan.stage("canary").role is Role.EXPERIMENT
    assert plan.stage("ab").role is Role.CANARY


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "non-empty"),
        ([{"name": "only", "percent": 0}], "at least two"),
        ([{"name": "a", "percent": 100}, {"name": "b", "percent": 100}], "must be at 0 %"),
        ([{"name": "a", "percent": 0}, {"name": "b", "percent": 50}], "must be at 100 %"),
        (
            [
                {"name": "a", "percent": 0},
                {"name": "b", "percent": 50},
                {"name": "c", "percent": 5},
            ],
            "must not decrease",
        ),
        ([{"name": "a", "percent": 0}, {"name": "a", "percent": 100}], "unique"),
        ([{"name": "a", "percent": 0}, {"name": "b", "percent": float("nan")}], "percent"),
        ([{"name": "a b", "percent": 0}, {"name": "b", "percent": 100}], "name"),
        (
            [{"name": "a", "percent": 0}, {"name": "b", "percent": 100, "needs_approval": False}],
            "always needs",
        ),
        (
            [
                {"name": "a", "percent": 0},
                {"name": "b", "percent": 5, "min_duration_hours": 1e9},
                {"name": "c", "percent": 100},
            ],
            "min_duration_hours",
        ),
    ],
)
def test_invalid_plans_are_refused_with_a_reason(stages, message):
    with pytest.raises(PlanError, match=message):
        Plan.parse(stages, has_experiment=False)


def test_a_linked_experiment_needs_a_stage_to_run_in():
    with pytest.raises(PlanError, match="needs a stage strictly between"):
        Plan.parse(
            [{"name": "a", "percent": 0}, {"name": "b", "percent": 100}], has_experiment=True
        )


def test_the_state_machine_allows_only_its_steps():
    assert check_step("active", Step.PAUSE) is State.PAUSED
    assert check_step("paused", Step.RESUME) is State.ACTIVE
    assert check_step("paused", Step.ROLLBACK) is State.ROLLED_BACK
    assert check_step("rolled_back", Step.REARM) is State.ACTIVE
    assert check_step("active", Step.COMPLETE, at_last_stage=True) is State.COMPLETED
    for state, step in [
        ("paused", Step.PAUSE),
        ("active", Step.RESUME),
        ("completed", Step.ROLLBACK),
        ("active", Step.REARM),
        ("rolled_back", Step.ADVANCE),
        ("completed", Step.CHANGE_SETTINGS),
    ]:
        with pytest.raises(PlanError):
            check_step(state, step)
    with pytest.raises(PlanError, match="last"):
        check_step("active", Step.COMPLETE, at_last_stage=False)


def test_a_staff_only_stage_with_little_traffic_can_be_left():
    plan = Plan.parse(OWN_NAMES, has_experiment=False)
    gate = evaluate_gate(
        plan,
        evidence(
            stage="dogfood",
            stage_health="insufficient_data",
            window_health="insufficient_data",
            canary_worse=None,
        ),
    )
    assert gate.ready, gate.summary()
    assert gate.to_stage.name == "pilot"


def test_a_canary_stage_needs_a_healthy_record_but_not_a_busy_window():
    plan = Plan.parse(OWN_NAMES, has_experiment=False)
    quiet = evaluate_gate(plan, evidence(stage="pilot", window_health="insufficient_data"))
    assert quiet.ready
    short = evaluate_gate(plan, evidence(stage="pilot", stage_health="insufficient_data"))
    assert not short.ready
    assert [c.name for c in short.blocking()] == ["health"]


def test_the_gate_is_a_checklist():
    plan = Plan.parse(SEED, has_experiment=True)
    gate = evaluate_gate(
        plan,
        evidence(
            stage="canary",
            entered_at=NOW - timedelta(hours=10),
            canary_worse=True,
            comparison_detail="canary error rate 0.45 % vs stable 0.05 %",
        ),
    )
    names = {c.name: c for c in gate.checks}
    assert not names["time_in_stage"].ok
    assert "38.0 h left" in names["time_in_stage"].detail
    assert not names["canary_vs_stable"].ok
    assert "0.45 %" in names["canary_vs_stable"].detail
    assert names["approval"].ok and "executive" in names["approval"].detail
    assert not gate.ready


def test_leaving_the_experiment_stage_needs_success_whatever_the_names():
    renamed = [dict(s, name=f"step-{i}") for i, s in enumerate(SEED)]
    plan = Plan.parse(renamed, has_experiment=True)
    held = evaluate_gate(
        plan, evidence(stage="step-2", experiment_verdict="inconclusive", experiment_key="x")
    )
    assert not held.ready
    assert "needs success" in held.summary()
    assert evaluate_gate(plan, evidence(stage="step-2", experiment_verdict="success")).ready


def test_the_last_stage_has_no_next_and_completes_after_its_time():
    plan = Plan.parse(SEED, has_experiment=False)
    gate = evaluate_gate(plan, evidence(stage="full"))
    assert not gate.ready and gate.to_stage is None
    assert completion_due(plan, stage="full", entered_at=NOW, now=NOW)
    long = Plan.parse(
        [*SEED[:3], {"name": "full", "percent": 100, "min_duration_hours": 24}],
        has_experiment=False,
    )
    assert not completion_due(long, stage="full", entered_at=NOW, now=NOW + timedelta(hours=23))
    assert completion_due(long, stage="full", entered_at=NOW, now=NOW + timedelta(hours=24))


def test_only_evidence_turning_against_the_step_invalidates():
    plan = Plan.parse(SEED, has_experiment=True)
    quiet = evidence(stage="ab", window_health="insufficient_data", experiment_verdict="success")
    assert evidence_against(plan, quiet) == []
    degraded = evidence(stage="ab", window_health="degraded", experiment_verdict="success")
    assert evidence_against(plan, degraded) == ["health of the last minutes is degraded"]
    flipped = evidence(stage="ab", experiment_verdict="failure")
    assert evidence_against(plan, flipped) == ["the experiment's decision is now failure"]
    worse = evidence(stage="canary", canary_worse=True, comparison_detail="worse")
    assert evidence_against(plan, worse) == ["worse"]


def test_thresholds_are_validated_so_that_evaluation_never_raises():
    with pytest.raises(PlanError, match="must be in \\[0, 1\\)"):
        parse_thresholds(
            {"max_error_rate": 1.5, "max_p95_ms": 100, "min_availability": 0.9}, what="sla"
        )
    with pytest.raises(PlanError, match="finite"):
        parse_thresholds(
            {"max_error_rate": float("inf"), "max_p95_ms": 100, "min_availability": 0.9},
            what="sla",
        )
    with pytest.raises(PlanError, match="unknown"):
        parse_thresholds(
            {"max_error_rate": 0.1, "max_p95_ms": 1, "min_availability": 0.9, "x": 1}, what="sla"
        )


def test_loosening_rollback_or_dropping_an_approval_needs_an_executive():
    plan = Plan.parse(SEED, has_experiment=False)
    rollback = {"max_error_rate": 0.01, "max_p95_ms": 200.0, "min_availability": 0.99}
    looser = {**rollback, "max_error_rate": 0.99}
    no_approval = [dict(s) for s in SEED]
    no_approval[2]["needs_approval"] = False
    errors, needs = settings_change_problems(
        old_plan=plan,
        new_plan=Plan.parse(no_approval, has_experiment=False),
        stage="canary",
        old_rollback=rollback,
        new_rollback=looser,
    )
    assert errors == []
    assert needs == ["rollback max_error_rate 0.01 → 0.99", "stage 'ab' no longer needs approval"]
    moved = [dict(s) for s in SEED]
    moved[1]["percent"] = 10
    errors, _ = settings_change_problems(
        old_plan=plan,
        new_plan=Plan.parse(moved, has_experiment=False),
        stage="canary",
        old_rollback=rollback,
        new_rollback=rollback,
    )
    assert errors and "keep its share" in errors[0]
