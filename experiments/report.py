"""The decision report, rendered from one snapshot only: the same snapshot
always gives the same report, byte for byte. The Markdown and JSON forms
carry the metadata (verdict, reasons, snapshot, inputs hash); the CSV form is
the results table only, a header row and one row per comparison, as
spreadsheets read it."""

import csv
import io
import json
from typing import Any

from common import wording
from experiments.models import COMPARISON_NUMBERS

# Numbers of a comparison kept in the snapshot's document only (not as columns).
DOCUMENT_NUMBERS = ("test_alpha", "important_alpha", "units_needed_total", "looks")

REPORT_COLUMNS = [
    "metric",
    "role",
    "variant",
    "control",
    "units",
    "control_units",
    "mean",
    "control_mean",
    *COMPARISON_NUMBERS,
    *DOCUMENT_NUMBERS,
    # How the metric was computed: the cap applied to each unit's value, a ratio's parts.
    "cap_applied",
    "ratio",
]


def report_data(results: dict[str, Any]) -> dict[str, Any]:
    """The report's content: the results answer plus the verdict up front."""
    return {
        "experiment": results["experiment"],
        "name": results.get("name", ""),
        "hypothesis": results.get("hypothesis", ""),
        "snapshot_id": results["snapshot_id"],
        "computed_at": results["computed_at"],
        "inputs_hash": results["inputs_hash"],
        "verdict": results["decision"]["verdict"],
        "inference": results.get("inference", ""),
        "correction": results.get("correction", ""),
        "reasons": results["decision"]["reasons"],
        "units": results["units"],
        "carryover_excluded": results["carryover_excluded"],
        "srm": results["srm"],
        "service": results.get("service") or {},
        "rows": list(_rows(results)),
    }


def _rows(results: dict[str, Any]):
    for metric in results["metrics"]:
        by_variant = {v["variant"]: v for v in metric["variants"]}
        for c in metric["comparisons"]:
            treated, control = by_variant.get(c["variant"], {}), by_variant.get(c["control"], {})
            yield {
                "metric": metric["metric"],
                "role": metric["role"],
                "variant": c["variant"],
                "control": c["control"],
                "units": treated.get("units"),
                "control_units": control.get("units"),
                "mean": treated.get("mean"),
                "control_mean": control.get("mean"),
                **{k: c.get(k) for k in COMPARISON_NUMBERS},
                **{k: c.get(k) for k in DOCUMENT_NUMBERS},
                "cap_applied": (metric.get("cap") or {}).get("applied"),
                "ratio": "{numerator}/{denominator}".format(**metric["ratio"])
                if metric.get("ratio")
                else None,
            }


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# Decision report: {data['experiment']}",
        "",
        f"**Verdict: {data['verdict'].upper()}**",
        "",
        *[f"- {reason}" for reason in data["reasons"]],
        "",
        f"- Snapshot: {data['snapshot_id']} computed at {data['computed_at']}",
        f"- Inputs hash: `{data['inputs_hash']}`",
        f"- Units analysed: {data['units']:,}"
        + (
            f" ({data['carryover_excluded']:,} first exposed during the canary left out)"
            if data["carryover_excluded"]
            else ""
        ),
    ]
    if data["hypothesis"]:
        lines.append(f"- Hypothesis: {data['hypothesis']}")
    srm = data["srm"]
    srm_p = wording.p_value(srm.get("p_value"))
    lines.append(
        f"- Sample ratio check: {'MISMATCH' if srm.get('flagged') else 'ok'} (p = {srm_p}; "
        + ", ".join(f"{k}: {v:,}" for k, v in srm.get("observed", {}).items())
        + ")"
    )
    computed = {r["metric"]: r for r in data["rows"]}  # once per metric, not per treatment
    for name, r in computed.items():
        if r.get("cap_applied") is not None:
            lines.append(f"- {name}: each unit's value capped at {_num(r['cap_applied'])}")
        if r.get("ratio"):
            lines.append(f"- {name}: ratio {r['ratio']} (delta method)")
    bayesian = [r for r in data["rows"] if r.get("chance_to_win") is not None]
    if bayesian:
        lines.append("- Bayesian engine (chance to win, risk of shipping the treatment):")
        lines += [
            f"  - {r['metric']} {r['variant']}: chance to win {r['chance_to_win'] * 100:.1f} %, "
            f"risk {_num(r['risk_treatment'])} (control {_num(r['risk_control'])})"
            for r in bayesian
        ]
    if data["service"]:
        service = data["service"]
        lines.append(
            f"- Treatment service levels ({service.get('source', '')}): error rate "
            f"{_num(service.get('error_rate'))}, P95 {_num(service.get('p95_ms'))} ms"
        )
    family = (data.get("inference") or "").replace("_", " ")
    decision_family = f"{family}, {data.get('correction') or ''}-adjusted".strip(", ")
    lines += [
        "",
        "| metric | role | variant | units | mean (control) | effect | relative | "
        "CI (fixed) | CI (sequential) | p (fixed horizon) | p (sequential) | "
        f"p (decision: {decision_family}) | significant | harm p | important interval | "
        "units needed |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | --- "
        "| ---: | --- | ---: |",
    ]
    for r in data["rows"]:
        rel = r["relative_effect"]
        important = "–"
        if r.get("important_ci_low") is not None or r.get("important_ci_high") is not None:
            important = f"[{_num(r.get('important_ci_low'))}, {_num(r.get('important_ci_high'))}]"
        lines.append(
            f"| {r['metric']} | {r['role']} | {r['variant']} | {_num(r['units'])} | "
            f"{_num(r['mean'])} ({_num(r['control_mean'])}) | {_num(r['absolute_effect'])} | "
            f"{'–' if rel is None else f'{rel * 100:+.1f} %'} | "
            f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}] | "
            f"[{_num(r['sequential_ci_low'])}, {_num(r['sequential_ci_high'])}] | "
            f"{wording.p_value(r['p_value'])} | {wording.p_value(r['sequential_p_value'])} | "
            f"{wording.p_value(r['p_value_adjusted'])} | "
            f"{_num(r['significant'])} | {wording.p_value(r.get('harm_p_value'))} | "
            f"{important} | {_num(r.get('units_needed'))} |"
        )
    return "\n".join(lines) + "\n"


def render_csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in data["rows"]:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
