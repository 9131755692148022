"""The seed's decision rules, pure."""

import pytest

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


# The corrected interval [0.105, 0.135] clears the +10 pp threshold: met.
PRIMARY_WIN = comparison(
    "adoption", "primary", 0.12, 0.34, True, important_ci_low=0.105, important_ci_high=0.135
)


def test_success_needs_the_required_rules_and_two_important_improvements():
    decision = decide(
        [
            PRIMARY_WIN,
            comparison(
                "completion",
                absolute=0.06,
                relative=0.17,
                significant=True,
                important_ci_low=0.051,
                important_ci_high=0.069,
            ),
        ],
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


def test_an_estimate_over_the_threshold_whose_interval_does_not_clear_it_is_only_likely_met():
    completion = comparison(
        "completion",
        absolute=0.08,
        significant=True,
        important_ci_low=0.03,
        important_ci_high=0.13,
    )
    decision = decide(
        [PRIMARY_WIN, completion], variants=["treatment"], srm_flagged=False, service=OK_SERVICE
    )
    assert decision.verdict == "conditional"
    assert "1 more likely met" in decision.reasons[0]
    assert any("completion +5 pp: likely met" in r for r in decision.reasons)


def test_a_metric_where_lower_is_better_is_judged_on_the_upper_bound():
    rules = {
        "important_needed": 1,
        "important": [{"metric": "wait", "min_absolute": 2.0, "label": "wait −2 s"}],
    }
    cleared = comparison(
        "wait", absolute=-3.0, higher_is_better=False, important_ci_low=-4.0, important_ci_high=-2.1
    )
    close = comparison(
        "wait", absolute=-3.0, higher_is_better=False, important_ci_low=-4.0, important_ci_high=-1.9
    )
    verdicts = [
        decide(
            [PRIMARY_WIN, c],
            variants=["treatment"],
            srm_flagged=False,
            service=OK_SERVICE,
            policy=rules,
        ).verdict
        for c in (cleared, close)
    ]
    assert verdicts == ["success", "conditional"]


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


ALL_MET = [
    PRIMARY_WIN,
    comparison("completion", absolute=0.06, important_ci_low=0.051, important_ci_high=0.07),
]


@pytest.mark.parametrize(
    ("service", "missing"),
    [
        (None, ["error rate", "P95 latency"]),
        (ServiceFigures(error_rate=None, p95_ms=None), ["error rate", "P95 latency"]),
        (ServiceFigures(error_rate=0.002, p95_ms=None), ["P95 latency"]),
        (ServiceFigures(error_rate=None, p95_ms=80), ["error rate"]),
    ],
)
def test_a_missing_required_service_figure_is_said_and_never_passes(service, missing):
    decision = decide(ALL_MET, variants=["treatment"], srm_flagged=False, service=service)
    assert decision.verdict == "inconclusive"
    assert "a required service figure is not measured" in decision.reasons[0]
    for name in missing:
        assert any(f"treatment {name} not measured" in r for r in decision.reasons)
    # With every figure measured and within its limit the same results succeed.
    assert decide(
        ALL_MET, variants=["treatment"], srm_flagged=False, service=OK_SERVICE
    ).verdict == ("success")


def test_a_policy_can_drop_a_service_requirement():
    decision = decide(
        ALL_MET,
        variants=["treatment"],
        srm_flagged=False,
        service=ServiceFigures(error_rate=0.002, p95_ms=None),
        policy={"max_p95_ms": None},
    )
    assert decision.verdict == "success"


def test_a_missing_figure_does_not_hide_a_failure():
    worse = comparison("adoption", "primary", -0.05, -0.1, True)
    decision = decide([worse], variants=["treatment"], srm_flagged=False, service=None)
    assert decision.verdict == "failure"


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
