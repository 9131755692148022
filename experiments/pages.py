"""Dashboard pages of experiments (server-rendered, login required)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from common import validation
from common.errors import DomainError
from common.selectors import newest_per_parent
from experiments import charts, selectors
from experiments.models import Experiment, Snapshot
from experiments.services import segments

SEGMENT_ATTRIBUTES = ("platform", "country", "plan", "cohort")
SERIES_CACHE_SECONDS = 3600


def latest_snapshots(experiment_ids: list[int]) -> dict[int, Snapshot]:
    return newest_per_parent(
        Snapshot,
        parent=Experiment,
        link="experiment",
        parent_ids=experiment_ids,
        order_by=("-computed_at", "-id"),
    )


@login_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    experiments = list(Experiment.objects.select_related("owner").order_by("-created_at"))
    latest = latest_snapshots([e.id for e in experiments])
    rows = [{"experiment": e, "latest": latest.get(e.id)} for e in experiments]
    return render(request, "experiments/list.html", {"rows": rows})


@login_required
def experiment_detail(request: HttpRequest, key: str) -> HttpResponse:
    try:
        experiment = selectors.get_experiment(key)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    snapshot = experiment.snapshots.first()
    # The history changes only with a new snapshot (every few minutes), while
    # the page is read far more often: keep the thinned series per snapshot.
    series = cache.get_or_set(
        f"experiments:series:{experiment.id}:{snapshot.id if snapshot else 0}",
        lambda: selectors.snapshot_series(experiment),
        SERIES_CACHE_SECONDS,
    )
    metrics = []
    for metric in snapshot.metrics if snapshot else []:
        metrics.append(
            {
                "result": metric,
                "forest": charts.forest_plot(metric),
                "forest_id": f"fig-forest-{metric['metric']}",
                "history": charts.over_time(metric["metric"], series.get(metric["metric"], [])),
                "history_id": f"fig-history-{metric['metric']}",
            }
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
    primary = [m for m in metrics if m["result"]["role"] == "primary"]
    needed = max(
        (c.get("units_needed") or 0 for m in primary for c in m["result"]["comparisons"]),
        default=0,
    )
    context = {
        "experiment": experiment,
        "snapshot": snapshot,
        "metrics": metrics,
        "segment": segment,
        "segment_attributes": SEGMENT_ATTRIBUTES,
        "breakdown": breakdown,
        "units_needed": needed,
        "progress_percent": round(100 * snapshot.units / (snapshot.units + needed))
        if snapshot and (snapshot.units + needed)
        else 0,
        "can_analyse": request.user.has_perm("experiments.manage_experiment"),
    }
    return render(request, "experiments/detail.html", context)
