"""How a snapshot reads at a glance: mapped from the decision, never re-decided."""

import pytest

from experiments import readout, svg_charts


def metric(kind="binomial", higher_is_better=True, **comparison):
    c = {
        "variant": "treatment",
        "control": "control",
        "absolute_effect": -0.1,
        "relative_effect": -0.356,
        "ci_low": -0.15,
        "ci_high": -0.05,
        "sequential_ci_low": -0.2,
        "sequential_ci_high": -0.01,
        "p_value": 0.00001,
        "sequential_p_value": 0.002,
        "p_value_adjusted": 0.004,
        "significant": True,
        "power": 0.9,
    }
    c.update(comparison)
    return {
        "metric": "adoption",
        "name": "Adoption",
        "kind": kind,
        "role": "primary",
        "higher_is_better": higher_is_better,
        "variants": [
            {"variant": "control", "units": 1000, "mean": 0.281, "std": None},
            {"variant": "treatment", "units": 1000, "mean": 0.181, "std": None},
        ],
        "comparisons": [c],
    }


@pytest.mark.parametrize(
    ("verdict", "action", "label"),
    [
        ("success", "ship", "Ship"),
        ("failure", "dont_ship", "Don't ship"),
        ("conditional", "dont_ship", "Don't ship yet"),
        ("inconclusive", "keep_running", "Keep running"),
        ("invalid", "fix_data", "Fix the data"),
    ],
)
def test_the_recommendation_maps_the_verdict(verdict, action, label):
    snapshot = {"units": 100, "decision": {"verdict": verdict, "reasons": ["x"]}, "metrics": []}
    line = readout.recommendation(status="running", snapshot=snapshot, analysis_minutes=5)
    assert (line.action, line.label) == (action, label)


def test_empty_states_say_what_happens_next():
    draft = readout.recommendation(status="draft", snapshot=None, analysis_minutes=5)
    assert draft.action == "start" and "within 5 minutes" in draft.text
    waiting = readout.recommendation(status="running", snapshot=None, analysis_minutes=5)
    assert "every 5 minutes" in waiting.text
    empty = readout.recommendation(
        status="running",
        snapshot={"units": 0, "decision": {"verdict": "inconclusive"}, "metrics": []},
        analysis_minutes=5,
    )
    assert empty.label == "No data yet"


def test_a_significant_drop_is_bad_when_higher_is_better_and_good_when_lower_is():
    m = metric()
    assert readout.tone(m, m["comparisons"][0]) == "bad"
    lower = metric(higher_is_better=False)
    assert readout.tone(lower, lower["comparisons"][0]) == "good"
    quiet = metric(significant=False)
    assert readout.tone(quiet, quiet["comparisons"][0]) == "neutral"


def test_the_table_names_each_p_value_family_and_formats_binomials_in_points():
    inference = readout.Inference(sequential=True, correction="holm", alpha=0.05)
    table = readout.metric_table(metric(), inference)
    labels = [g["label"] for g in table["groups"]]
    assert "Fixed horizon" in labels and "Sequential (always valid)" in labels
    assert any("sequential, Holm-adjusted" in label for label in labels)
    cells = {c["key"]: c for c in table["rows"][0]["cells"]}
    assert cells["effect"]["text"] == "−10.0 pp" and cells["effect"]["tone"] == "bad"
    assert cells["fixed_p"]["text"] == "< 0.0001"
    assert cells["fixed_interval"]["text"] == "−15.0 pp to −5.0 pp"
    assert cells["verdict"]["text"] == "significantly worse"


def test_a_comparison_without_data_reads_as_such():
    inference = readout.Inference(sequential=False, correction="holm", alpha=0.05)
    empty = metric(
        absolute_effect=None,
        relative_effect=None,
        ci_low=None,
        ci_high=None,
        sequential_ci_low=None,
        sequential_ci_high=None,
        p_value=None,
        sequential_p_value=None,
        p_value_adjusted=None,
        significant=False,
        power=None,
    )
    texts = [c["text"] for c in readout.metric_table(empty, inference)["rows"][0]["cells"]]
    assert "[, ]" not in "".join(texts) and "()" not in "".join(texts)
    assert "no data yet" in texts
    svg = svg_charts.forest_svg(empty, element_id="f")
    assert "no data yet" in svg


def test_the_srm_line_shows_a_passing_check_too():
    line = readout.srm_line(
        {
            "p_value": 0.62,
            "flagged": False,
            "observed": {"control": 501, "treatment": 499},
            "expected": {"control": 500, "treatment": 500},
        }
    )
    assert line == "split 50.1 / 49.9 (control / treatment; expected 50.0 / 50.0), p = 0.62"
    assert readout.srm_line({"observed": {"control": 0}}) == "no units yet"


def test_the_interval_chart_spans_zero_and_every_arm():
    m = metric()
    m["comparisons"].append(
        {**m["comparisons"][0], "variant": "treatment-2", "absolute_effect": None}
    )
    svg = svg_charts.forest_svg(m, element_id="f")
    assert svg.count('class="label"') == 2  # both arms, one without data
    assert 'class="zero"' in svg and 'role="img"' in svg and "aria-label=" in svg
    low, high = svg_charts._domain(m["comparisons"])
    assert low < -0.2 and high > 0  # all intervals are below zero, the axis still shows it


def test_primary_lift_uses_the_deciding_family():
    snapshot = {
        "units": 10,
        "decision": {"variant": "treatment"},
        "metrics": [
            metric(
                relative_ci_low=-0.5,
                relative_ci_high=-0.2,
                relative_sequential_ci_low=-0.6,
                relative_sequential_ci_high=-0.1,
            )
        ],
    }
    lift = readout.primary_lift(snapshot, sequential=True)
    assert lift["lift"] == "−35.6 %" and lift["interval"] == "−60.0 % to −10.0 %"
    assert readout.primary_lift(snapshot, sequential=False)["interval"] == "−50.0 % to −20.0 %"
