"""Dashboard pages that create, edit and launch experiments and metrics.
Each view parses a form, calls one service and renders; the services hold
the rules and their DomainError becomes a message next to the field."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.form_errors import place_refusal
from experiments import forms, selectors
from experiments.services import editing, ingestion, lifecycle

ACTIONS = {
    "start": (lifecycle.start_experiment, "started"),
    "stop": (lifecycle.stop_experiment, "stopped"),
    "archive": (lifecycle.archive_experiment, "archived"),
}


def _forbidden(request: HttpRequest, permission: str, what: str) -> HttpResponse:
    return render(
        request,
        "403.html",
        {"message": f"{what} needs the {permission} permission (product managers have it)."},
        status=403,
    )


def _next_url(request: HttpRequest, default: str) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return default


@login_required
def metric_new(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("experiments.add_metric"):
        return _forbidden(request, "experiments.add_metric", "Creating a metric")
    form = forms.MetricForm(request.POST or None)
    status = 200
    if request.method == "POST" and not form.is_valid():
        status = 400
    elif request.method == "POST":
        try:
            metric = lifecycle.create_metric(**form.cleaned_data)
        except DomainError as exc:
            status = exc.status
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            ingestion.forget_metric_cache()
            messages.success(request, f"Metric '{metric.key}' created.")
            return redirect(_next_url(request, "/experiments/metrics/"))
    return render(
        request,
        "experiments/metric_form.html",
        {"form": form, "next": _next_url(request, "")},
        status=status,
    )


@login_required
def metric_list(request: HttpRequest) -> HttpResponse:
    metrics = selectors.list_metrics()
    return render(request, "experiments/metric_list.html", {"metrics": metrics})


@login_required
def metric_edit(request: HttpRequest, key: str) -> HttpResponse:
    metric = selectors.list_metrics().filter(key=key).first()
    if metric is None:
        return render(request, "404.html", {"message": f"Unknown metric '{key}'."}, status=404)
    if not request.user.has_perm("experiments.change_metric"):
        return _forbidden(request, "experiments.change_metric", "Editing a metric")
    initial = {name: getattr(metric, name) for name in forms.MetricForm.base_fields}
    form = forms.MetricForm(request.POST or None, initial=initial, metric=metric)
    status = 200
    if request.method == "POST" and not form.is_valid():
        status = 400
    elif request.method == "POST":
        changes = {k: v for k, v in form.cleaned_data.items() if k != "key"}
        try:
            editing.update_metric(metric=metric, changes=changes)
        except DomainError as exc:
            status = exc.status
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Metric '{key}' saved.")
            return redirect("metric-list-page")
    return render(
        request, "experiments/metric_form.html", {"form": form, "metric": metric}, status=status
    )


class ExperimentPage:
    """The four parts of the experiment form, bound together."""

    def __init__(self, request: HttpRequest, experiment=None) -> None:
        data = request.POST if request.method == "POST" else None
        self.experiment = experiment
        self.form = forms.ExperimentForm(
            data,
            initial=forms.experiment_initial(experiment, owner=request.user),
            experiment=experiment,
        )

        # A bound formset gets no initial rows: a posted row that equals its
        # starting value must count as given, not as an untouched extra row.
        def rows(initial):
            return None if data is not None else initial(experiment)

        self.variants = forms.VariantFormSet(
            data, initial=rows(forms.variants_initial), prefix="variants"
        )
        self.metrics = forms.MetricLinkFormSet(
            data, initial=rows(forms.metrics_initial), prefix="metrics"
        )
        self.important = forms.ImportantRuleFormSet(
            data, initial=rows(forms.important_initial), prefix="important"
        )
        self.errors: dict[str, list[str]] = {}
        # 400 for a form with errors, the service's status for its refusal.
        self.status = 200

    def is_valid(self) -> bool:
        parts = (self.form, self.variants, self.metrics, self.important)
        valid = all([part.is_valid() for part in parts])  # every part shows its errors
        if not valid:
            self.status = 400
        return valid

    def decision_policy(self) -> dict[str, Any]:
        return {**self.form.policy_fields(), "important": self.important.rules()}

    def refused(self, exc: DomainError) -> None:
        """Show a service's refusal next to what it is about."""
        self.status = exc.status
        sections = {"variants": "variants", "metrics": "metrics", "decision_policy": "policy"}
        place_refusal(self.form, self.errors, exc, sections)

    def context(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "form": self.form,
            "variants": self.variants,
            "metrics": self.metrics,
            "important": self.important,
            "service_errors": self.errors,
            "running": bool(self.experiment and self.experiment.status == "running"),
        }


@login_required
def experiment_new(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("experiments.add_experiment"):
        return _forbidden(request, "experiments.add_experiment", "Creating an experiment")
    page = ExperimentPage(request)
    if request.method == "POST" and page.is_valid():
        data = page.form.cleaned_data
        try:
            experiment = lifecycle.create_experiment(
                key=data["key"],
                name=data["name"],
                hypothesis=data["hypothesis"],
                traffic_percent=data["traffic_percent"],
                alpha=data["alpha"],
                variants=page.variants.specs(),
                metrics=page.metrics.specs(),
                owner=data["owner"],
                decision_policy=page.decision_policy(),
                sequential=data["sequential"],
                correction=data["correction"],
                cuped_lookback_days=data["cuped_lookback_days"],
                exclude_carryover=data["exclude_carryover"],
                by=request.user,
            )
        except DomainError as exc:
            page.refused(exc)
        else:
            messages.success(
                request, f"Experiment '{experiment.key}' created as a draft. Start it when ready."
            )
            return redirect("experiment-page", key=experiment.key)
    return render(request, "experiments/form.html", page.context(), status=page.status)


@login_required
def experiment_edit(request: HttpRequest, key: str) -> HttpResponse:
    try:
        experiment = selectors.get_experiment(key)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    if not request.user.has_perm("experiments.change_experiment"):
        return _forbidden(request, "experiments.change_experiment", "Editing an experiment")
    page = ExperimentPage(request, experiment)
    if request.method == "POST" and page.is_valid():
        data = page.form.cleaned_data
        edit = editing.ExperimentEdit(
            name=data["name"],
            hypothesis=data["hypothesis"],
            owner=data["owner"],
            traffic_percent=data["traffic_percent"],
            alpha=data["alpha"],
            sequential=data["sequential"],
            correction=data["correction"],
            cuped_lookback_days=data["cuped_lookback_days"],
            exclude_carryover=data["exclude_carryover"],
            decision_policy=page.decision_policy(),
            variants=page.variants.specs(),
            metrics=page.metrics.specs(),
        )
        try:
            editing.update_experiment(experiment=experiment, edit=edit, by=request.user)
        except DomainError as exc:
            page.refused(exc)
        else:
            messages.success(request, f"Experiment '{key}' saved.")
            return redirect("experiment-page", key=key)
    return render(request, "experiments/form.html", page.context(), status=page.status)


@login_required
@require_POST
def experiment_action(request: HttpRequest, key: str, step: str) -> HttpResponse:
    """Start, stop or archive from the experiment page (a confirmed POST)."""
    try:
        experiment = selectors.get_experiment(key)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    if step not in ACTIONS:
        return render(request, "404.html", {"message": f"Unknown action {step}."}, status=404)
    if not request.user.has_perm("experiments.manage_experiment"):
        return _forbidden(request, "experiments.manage_experiment", f"To {step} an experiment")
    service, done = ACTIONS[step]
    try:
        service(experiment=experiment, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Experiment '{key}' {done}.")
    return redirect("experiment-page", key=key)
