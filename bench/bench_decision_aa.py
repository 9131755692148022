"""A/A false-positive rate of the experiment decision over 50 looks, through
the same code the analysis runs after the database (`analysis._compare_arms`,
`analysis._keep_running`, `families.flag`, `decision.decide`), for the default
sequential decision and with a ratio metric, a capped metric, the Bayesian
engine and a segment breakdown.

    .venv/bin/python bench/bench_decision_aa.py [--experiments 1000] [--looks 50]

A false positive is an experiment whose verdict is anything but
`inconclusive` at some look (a primary "significantly better" — or worse, a
guardrail "significantly worse"); for segments, any segment cell significant
at some look after the correction across segments. Every experiment has one
primary and one guardrail metric; 200 new units per arm per look.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-decision-aa-"))

import django

django.setup()

from types import SimpleNamespace  # noqa: E402

from experiments import stats  # noqa: E402
from experiments.decision import MetricComparison, ServiceFigures, decide  # noqa: E402
from experiments.services import analysis, families  # noqa: E402

ALPHA = 0.05
BATCH = 200
SERVICE = ServiceFigures(error_rate=0.001, p95_ms=50)


def _cell(metric, role, arms, previous, *, bayesian=False, higher_is_better=True):
    numbers = analysis._compare_arms(*arms, alpha=ALPHA, cuped=False)
    comparison = {"variant": "treatment", "control": "control", **numbers}
    analysis._keep_running(comparison, previous.get((metric, "treatment"), {}), "aa")
    if bayesian:
        result = stats.bayesian_compare(*arms, alpha=ALPHA, higher_is_better=higher_is_better)
        comparison["bayesian"] = {
            "chance_to_win": result.chance_to_win,
            "risk_treatment": result.risk_treatment,
            "relative_mean": result.mean,
            "relative_sd": result.sd,
            "absolute_mean": 0.0,
            "absolute_sd": 1.0,
            "note": result.reason,
        }
    return {
        "metric": metric,
        "role": role,
        "higher_is_better": higher_is_better,
        "variants": [
            {"variant": "control", "units": arms[0].moments().n},
            {"variant": "treatment", "units": arms[1].moments().n},
        ],
        "comparisons": [comparison],
    }


def _verdict(out, *, engine="frequentist"):
    experiment = SimpleNamespace(alpha=ALPHA, sequential=True, correction="holm", engine=engine)
    policy = analysis.policy_with_defaults({"important_needed": 0})
    families.flag(out, experiment=experiment, policy=policy, previous={})
    return decide(
        [
            MetricComparison(
                metric=m["metric"],
                role=m["role"],
                variant="treatment",
                absolute_effect=c["absolute_effect"],
                relative_effect=c["relative_effect"],
                significant=c["significant"],
                higher_is_better=m["higher_is_better"],
            )
            for m in out
            for c in m["comparisons"]
        ],
        variants=["treatment"],
        srm_flagged=False,
        service=SERVICE,
        policy=policy,
    ).verdict


def _mean_arms(values):
    """Per arm VariantStats from unit values (arm, units)."""
    return [stats.VariantStats.from_values(v) for v in values]


def _draw(rng, kind, n_new):
    """New unit values for both arms of one metric: (2, n_new) or (2, 2, n_new) for ratios."""
    if kind == "ratio":
        z = rng.poisson(3.0, size=(2, n_new)) + 1.0
        y = rng.binomial(z.astype(int), 0.4).astype(float)
        return np.stack([y, z], axis=1)
    if kind == "capped":
        return rng.lognormal(3.0, 1.2, size=(2, n_new))  # heavy right tail
    return rng.normal(10.0, 3.0, size=(2, n_new))


def _arms(kind, data):
    if kind == "ratio":
        arms = []
        for a in range(2):
            y, z = data[a, 0], data[a, 1]
            arms.append(
                stats.ratio_moments(
                    n=y.size,
                    y_sum=y.sum(),
                    z_sum=z.sum(),
                    y_squares=float(y @ y),
                    z_squares=float(z @ z),
                    yz=float(y @ z),
                )
            )
        return arms
    if kind == "capped":
        cap = np.quantile(data.ravel(), 0.99, method="inverted_cdf")
        return _mean_arms(np.minimum(data, cap))
    return _mean_arms(data)


def run(kind, experiments, looks, seed, *, engine="frequentist", final_only=False):
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(experiments):
        data = {"p": [], "g": []}
        previous: dict = {}
        hit = False
        for _look in range(looks):
            for name in data:
                data[name].append(_draw(rng, kind, BATCH))
            out = []
            for name, role in (("p", "primary"), ("g", "guardrail")):
                arms = _arms(kind, np.concatenate(data[name], axis=-1))
                out.append(_cell(name, role, arms, previous, bayesian=engine == "bayesian"))
            previous = {(m["metric"], "treatment"): m["comparisons"][0]["running"] for m in out}
            if not final_only or _look == looks - 1:
                hit = hit or _verdict(out, engine=engine) != "inconclusive"
        flagged += hit
    return flagged / experiments


def run_segments(experiments, looks, seed, levels=3):
    """One primary metric in `levels` segments, Holm across the segment cells,
    sequential p-values (as segments.segment_results computes them)."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(experiments):
        data = []
        hit = False
        for _look in range(looks):
            data.append(rng.normal(10.0, 3.0, size=(2, BATCH)))
            values = np.concatenate(data, axis=-1)
            level = np.arange(values.shape[-1]) % levels
            p = []
            for s in range(levels):
                arms = _mean_arms(values[:, level == s])
                p.append(stats.compare(*arms, alpha=ALPHA, sequential=True).p_value)
            hit = hit or min(stats.adjust_p_values(p)) < ALPHA
        flagged += hit
    return flagged / experiments


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--looks", type=int, default=50)
    args = parser.parse_args()
    n, looks = args.experiments, args.looks
    se = (ALPHA * (1 - ALPHA) / n) ** 0.5
    print(f"A/A, {n} experiments x {looks} looks x {BATCH} units per arm per look")
    print(f"(Monte-Carlo SE at 5 %: {se * 100:.2f} pp; the limit is alpha + 1.5 pp = 6.5 %)")
    for label, call in (
        ("default sequential decision (mean metrics)", lambda: run("mean", n, looks, 1)),
        ("ratio metrics (delta method)", lambda: run("ratio", n, looks, 2)),
        ("capped metrics (99th percentile, log-normal)", lambda: run("capped", n, looks, 3)),
        ("segments (3 levels, Holm across them)", lambda: run_segments(n, looks, 4)),
        (
            "Bayesian engine (chance >= 95 % and risk < 0.25 %)",
            lambda: run("mean", n, looks, 5, engine="bayesian"),
        ),
        (
            "Bayesian engine, judged once at the last look",
            lambda: run("mean", n, looks, 6, engine="bayesian", final_only=True),
        ),
    ):
        started = time.perf_counter()
        rate = call()
        print(f"  {label}: {rate * 100:.2f} %  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
