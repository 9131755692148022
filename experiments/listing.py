"""The experiments table of the overview and the experiments page: search,
filters and paging, and per experiment the primary metric's lift with its
interval and the next step (read from the latest snapshot by
experiments.readout)."""

from typing import Any

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet

from common import validation
from common.selectors import newest_per_parent
from experiments import readout
from experiments.models import Experiment, Snapshot

PAGE_SIZE = 20


class ExperimentFilterForm(forms.Form):
    """The query string of the experiments table. Bad input becomes a form
    error shown on the page, never a database error."""

    q = forms.CharField(
        label="Search",
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "key or name", "type": "search"}),
    )
    status = forms.ChoiceField(choices=[("", "any"), *Experiment.Status.choices], required=False)
    owner = forms.CharField(
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "username"}),
    )

    def _text(self, name: str) -> str:
        try:
            return validation.query_text(self.cleaned_data.get(name), max_length=150)
        except validation.Invalid as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_q(self) -> str:
        return self._text("q").strip()

    def clean_owner(self) -> str:
        return self._text("owner").strip()

    def error_messages(self) -> list[str]:
        return [
            f"{self.fields[name].label or name.capitalize()}: {message}"
            for name, messages in self.errors.items()
            for message in messages
        ]


def latest_snapshots(experiment_ids: list[int]) -> dict[int, Snapshot]:
    return newest_per_parent(
        Snapshot,
        parent=Experiment,
        link="experiment",
        parent_ids=experiment_ids,
        order_by=("-computed_at", "-id"),
    )


def filter_experiments(
    *, q: str = "", status: str = "", owner: str = "", ids: QuerySet | None = None
) -> QuerySet[Experiment]:
    experiments = Experiment.objects.select_related("owner").order_by("-created_at", "-id")
    if q:
        experiments = experiments.filter(Q(key__icontains=q) | Q(name__icontains=q))
    if status:
        experiments = experiments.filter(status=status)
    if owner:
        experiments = experiments.filter(owner__username=owner)
    if ids is not None:
        experiments = experiments.filter(id__in=ids)
    return experiments


def experiment_page(
    form: ExperimentFilterForm, page_number: Any, *, ids: QuerySet | None = None
) -> Page:
    """One page of the filtered experiments (none when the filters are invalid)."""
    if form.is_valid():
        data = form.cleaned_data
        experiments = filter_experiments(
            q=data["q"], status=data["status"], owner=data["owner"], ids=ids
        )
    else:
        experiments = Experiment.objects.none()
    return Paginator(experiments, PAGE_SIZE).get_page(page_number)


def table_rows(experiments: list[Experiment], *, analysis_minutes: float) -> list[dict[str, Any]]:
    """Per experiment: its latest snapshot, the primary lift and the next step."""
    latest = latest_snapshots([e.id for e in experiments])
    rows = []
    for experiment in experiments:
        snapshot = latest.get(experiment.id)
        data = _snapshot_data(snapshot)
        rows.append(
            {
                "experiment": experiment,
                "latest": snapshot,
                "lift": readout.primary_lift(data, sequential=experiment.sequential),
                "next": readout.recommendation(
                    status=experiment.status, snapshot=data, analysis_minutes=analysis_minutes
                ),
            }
        )
    return rows


def _snapshot_data(snapshot: Snapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "units": snapshot.units,
        "decision": snapshot.decision,
        "metrics": snapshot.metrics,
        "srm": snapshot.srm,
    }
