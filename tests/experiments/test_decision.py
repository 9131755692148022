"""The seed's decision rules, pure."""

from experiments.decision import MetricComparison, ServiceFigures, decide

OK_SERVICE = ServiceFigures(error_rate=0.002, p95_ms=80)


def comparison(
    metric,
    role="secondary",
    absolute=0.0,
    relative=0.0,
    significant=False,
    higher_is_better=True,
    variant="treatment",
    **extra,
):
    return MetricComparison(
        metric=metric,
        role=role,
        variant=variant,
        absolute_effect=absolute,
        relative_effect=relative,
        significant=significant,
        higher_is_better=higher_is_better,
        **extra,
    )


PRIMARY_WIN = comparison("adoption", "primary", 0.12, 0.34, True)


def test_success_needs_the_required_rules_and_two_important_improvements():
    decision = decide(
        [PRIMARY_WIN, comparison("completion", absolute=0.06, relative=0.17, significant=True)],
        variants=["treatment"],
        srm_flagged=False,
        service=OK_SERVICE,
    )
    assert decision.verdict == "success"
    assert decision.reasons[0].startswith("2 of 4 important improvements met")
    assert any("adoption +10 pp: met" in r for r in decision.reasons)
    assert any("error rate 0.20 % < 0.50 %" in r for r in decision.reasons)


def test_conditional_when_required_holds_but_too_few_important_improvements():
    decision = decide([PRIMARY_WIN], variants=["treatment"], srm_flagged=False, service=OK_SERVICE)
    assert decision.verdict == "conditional"
    assert "only 1 of 4" in decision.reasons[0]
    assert any("session duration +100 %: not measured" in r for r in decision.reasons)


def test_an_estimate_over_the_threshold_that_is_not_significant_does_not_count():
    decision = decide(
        [PRIMARY_WIN, comparison("completion", absolute=0.08, significant=False)],
        variants=["treatment"],
        srm_flagged=False,
        service=OK_SERVICE,
    )
    assert decision.verdict == "conditional"
    assert any("reaches the threshold but is not significant" in r for r in decision.reasons)


def test_failure_when_the_error_rate_or_latency_is_over_its_limit():
    decision = decide(
        [PRIMARY_WIN],
        variants=["treatment"],
        srm_flagged=False,
        service=ServiceFigures(error_rate=0.007, p95_ms=140),
    )
    assert decision.verdict == "failure"
    assert any("error rate 0.70 % is not below 0.50 %" in r for r in decision.reasons)
    assert any("P95 latency 140 ms is not below 100 ms" in r for r in decision.reasons)


def test_failure_when_a_guardrail_is_significantly_worse():
    guardrail = comparison("errors_seen", "guardrail", 0.01, 0.5, True, higher_is_better=False)
    decision = decide(
        [PRIMARY_WIN, guardrail], variants=["treatment"], srm_flagged=False, service=OK_SERVICE
    )
    assert decision.verdict == "failure"
    assert "guardrail errors_seen is significantly worse" in decision.reasons[0]


def test_a_guardrail_that_improves_is_no_failure():
    guardrail = comparison("errors_seen", "guardrail", -0.01, -0.5, True, higher_is_better=False)
    decision = decide(
        [PRIMARY_WIN, guardrail], variants=["treatment"], srm_flagged=False, service=OK_SERVICE
    )
    assert decision.verdict == "conditional"


def test_inconclusive_says_how_many_more_units_are_needed():
    waiting = comparison(
        "adoption", "primary", 0.02, 0.05, False, units_needed=12_000, days_needed=6.0
    )
    decision = decide([waiting], variants=["treatment"], srm_flagged=False, service=OK_SERVICE)
    assert decision.verdict == "inconclusive"
    assert "about 12,000 more units needed (≈ 6.0 days at the current rate)" in decision.reasons[0]


def test_srm_makes_the_experiment_invalid_whatever_the_results():
    decision = decide(
        [PRIMARY_WIN],
        variants=["treatment"],
        srm_flagged=True,
        srm_p_value=1e-6,
        service=OK_SERVICE,
    )
    assert decision.verdict == "invalid"
    assert "p = 1e-06" in decision.reasons[0]


def test_without_rollout_health_the_service_rules_are_reported_as_not_evaluated():
    decision = decide([PRIMARY_WIN], variants=["treatment"], srm_flagged=False, service=None)
    assert any("not evaluated" in r for r in decision.reasons)


def test_policy_overrides_change_the_thresholds():
    decision = decide(
        [PRIMARY_WIN],
        variants=["treatment"],
        srm_flagged=False,
        service=OK_SERVICE,
        policy={"important_needed": 1},
    )
    assert decision.verdict == "success"


def test_the_best_treatment_wins_and_the_others_are_named():
    loser = comparison("adoption", "primary", -0.05, -0.1, True, variant="treatment-2")
    decision = decide(
        [PRIMARY_WIN, loser],
        variants=["treatment", "treatment-2"],
        srm_flagged=False,
        service=OK_SERVICE,
    )
    assert decision.verdict == "conditional"
    assert decision.variant == "treatment"
    assert any(r.startswith("treatment-2: failure") for r in decision.reasons)
