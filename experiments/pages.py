"""Dashboard pages of experiments (server-rendered, login required)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from common import validation
from common.errors import DomainError
from experiments import charts, listing, readout, selectors, svg_charts
from experiments.models import Experiment
from experiments.services import segments

SEGMENT_ATTRIBUTES = ("platform", "country", "plan", "cohort")
SERIES_CACHE_SECONDS = 3600

# Kept here under its old name: the rollout pages import it.
latest_snapshots = listing.latest_snapshots


@login_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    form = listing.ExperimentFilterForm(request.GET)
    page = listing.experiment_page(form, request.GET.get("page"))
    return render(
        request,
        "experiments/list.html",
        {
            "form": form,
            "errors": [] if form.is_valid() else form.error_messages(),
            "page": page,
            "rows": listing.table_rows(
                list(page), analysis_minutes=selectors.analysis_every_minutes()
            ),
            "query": _query_without_page(request),
        },
    )


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _snapshot_dict(snapshot) -> dict | None:
    if snapshot is None:
        return None
    return {"units": snapshot.units, "decision": snapshot.decision, "metrics": snapshot.metrics}


def _metric_cards(experiment: Experiment, snapshot, series: dict) -> list[dict]:
    inference = readout.Inference(
        sequential=experiment.sequential, correction=experiment.correction, alpha=experiment.alpha
    )
    cards = []
    for metric in snapshot.metrics if snapshot else []:
        key, kind = metric["metric"], metric.get("kind", "mean")
        history = series.get(key, [])
        cards.append(
            {
                "result": metric,
                "variants": readout.variant_rows(metric),
                "table": readout.metric_table(metric, inference),
                # Built from escaped text only (svg_charts escapes every label).
                "forest": mark_safe(svg_charts.forest_svg(metric, element_id=f"forest-{key}")),  # noqa: S308
                "history": charts.over_time(key, history, kind=kind) if history else None,
                "history_id": f"fig-history-{key}",
                "history_summary": charts.over_time_summary(key, history, kind=kind),
            }
        )
    return cards


def _progress(snapshot) -> dict:
    """The sample progress toward the primary metric's minimum effect:
    unknown (None) is not the same as enough (0)."""
    if snapshot is None or not snapshot.units:
        return {"state": "empty", "percent": 0}
    needed, days = readout.units_needed(snapshot.metrics)
    primaries = [m for m in snapshot.metrics if m["role"] == "primary"]
    known = any(c.get("units_needed") is not None for m in primaries for c in m["comparisons"])
    if not known:
        return {"state": "unknown", "percent": 0}
    if not needed:
        return {"state": "enough", "percent": 100}
    return {
        "state": "more",
        "percent": round(100 * snapshot.units / (snapshot.units + needed)),
        "text": readout.more_units_text(needed, days),
    }


@login_required
def experiment_detail(request: HttpRequest, key: str) -> HttpResponse:
    try:
        experiment = selectors.get_experiment(key)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    snapshot = experiment.snapshots.first()
    # The history changes only with a new snapshot (every few minutes), while
    # the page is read far more often: keep the thinned series per snapshot.
    series = (
        cache.get_or_set(
            f"experiments:series:{experiment.id}:{snapshot.id}",
            lambda: selectors.snapshot_series(experiment),
            SERIES_CACHE_SECONDS,
        )
        if snapshot
        else {}
    )
    breakdown = None
    try:
        segment = validation.query_text(
            request.GET.get("segment"), max_length=segments.MAX_ATTRIBUTE_LENGTH
        )
    except validation.Invalid as exc:
        messages.error(request, f"Segment attribute: {exc.message}")
        segment = ""
    if segment and snapshot:
        try:
            breakdown = segments.segment_results(experiment=experiment, attribute=segment)
        except DomainError as exc:  # stored data the analysis cannot use
            messages.error(request, exc.message)
        else:
            # Written like the results above: binomial effects in percentage points.
            kinds = {link.metric.key: link.metric.kind for link in experiment.metrics.all()}
            for level in breakdown.get("levels", []):
                for metric in level.get("metrics", []):
                    metric.setdefault("kind", kinds.get(metric.get("metric")))
    every = selectors.analysis_every_minutes()
    variants = list(experiment.variants.all())
    total_weight = sum(v.weight for v in variants) or 1
    context = {
        "experiment": experiment,
        "snapshot": snapshot,
        "recommendation": readout.recommendation(
            status=experiment.status, snapshot=_snapshot_dict(snapshot), analysis_minutes=every
        ),
        "srm_line": readout.srm_line(snapshot.srm) if snapshot else "",
        "metrics": _metric_cards(experiment, snapshot, series),
        "setup_variants": [
            {"variant": v, "share": 100 * v.weight / total_weight} for v in variants
        ],
        "setup_metrics": list(experiment.metrics.all()),
        "segment": segment,
        "segment_attributes": SEGMENT_ATTRIBUTES,
        "breakdown": breakdown,
        "progress": _progress(snapshot),
        "analysis_every": every,
        "can_analyse": request.user.has_perm("experiments.manage_experiment"),
    }
    return render(request, "experiments/detail.html", context)
