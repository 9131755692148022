"""Dashboard pages that create a rollout and change a live rollout's plan and
thresholds. Each view parses the form, calls one service (create_rollout or
change_settings, both validating through lifecycle.validated_settings) and
shows its refusal next to the part it is about."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from common.errors import DomainError
from common.form_errors import place_refusal
from rollout import access, forms, selectors
from rollout.models import Rollout
from rollout.plan import LIVE_STATES, Step
from rollout.services import lifecycle


class RolloutPage:
    def __init__(self, request: HttpRequest, rollout: Rollout | None = None) -> None:
        data = request.POST if request.method == "POST" else None
        self.rollout = rollout
        self.form = forms.RolloutForm(data, initial=forms.rollout_initial(rollout), rollout=rollout)
        # Bound: no initial rows, so a posted row equal to its default still counts.
        self.stages = forms.StageFormSet(
            data,
            initial=None if data is not None else forms.stages_initial(rollout),
            prefix="stages",
        )
        self.errors: dict[str, list[str]] = {}
        self.status = 200

    def is_valid(self) -> bool:
        valid = all([self.form.is_valid(), self.stages.is_valid()])
        if not valid:
            self.status = 400
        return valid

    def settings(self) -> dict[str, Any]:
        data = self.form.cleaned_data
        return {
            "stages": self.stages.stages(),
            "sla": self.form.thresholds("sla"),
            "rollback": self.form.thresholds("rollback"),
            "min_requests": data["min_requests"],
            "window_minutes": data["window_minutes"],
            "allow_list": data["allow_list"],
        }

    def refused(self, exc: DomainError) -> None:
        """Show a service's refusal next to what it is about."""
        self.status = exc.status
        sections = {"stages": "stages", "sla": "thresholds", "rollback": "thresholds"}
        place_refusal(self.form, self.errors, exc, sections)

    def context(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout,
            "form": self.form,
            "stages": self.stages,
            "service_errors": self.errors,
            "known_features": forms.KNOWN_FEATURES,
        }


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "403.html", {"message": message}, status=403)


@login_required
def rollout_new(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("rollout.add_rollout"):
        return _forbidden(request, "Creating a rollout needs the rollout.add_rollout permission.")
    page = RolloutPage(request)
    if request.method == "POST" and page.is_valid():
        data = page.form.cleaned_data
        try:
            rollout = lifecycle.create_rollout(
                key=data["key"],
                name=data["name"],
                feature=data["feature"],
                experiment=data["experiment"],
                by=request.user,
                **page.settings(),
            )
        except DomainError as exc:
            if exc.code == "forbidden":
                return _forbidden(request, exc.message)
            page.refused(exc)
        else:
            messages.success(
                request,
                f"Rollout '{rollout.key}' created at {rollout.stage} (0 %, staff only). "
                "An executive approves its first step.",
            )
            return redirect("rollout-page", key=rollout.key)
    return render(request, "rollout/form.html", page.context(), status=page.status)


@login_required
def rollout_edit(request: HttpRequest, key: str) -> HttpResponse:
    try:
        rollout = selectors.get_rollout(key)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    if not access.may(request.user, Step.CHANGE_SETTINGS):
        return _forbidden(
            request,
            f"Changing a rollout's plan needs the {access.STEP_PERMISSION[Step.CHANGE_SETTINGS]} "
            "permission.",
        )
    if rollout.state not in LIVE_STATES:
        messages.error(request, f"Rollout '{key}' is {rollout.state}: its record stays as it was.")
        return redirect("rollout-page", key=key)
    page = RolloutPage(request, rollout)
    if request.method == "POST" and page.is_valid():
        try:
            lifecycle.change_settings(
                rollout=rollout,
                by=request.user,
                comment=page.form.cleaned_data["comment"],
                **page.settings(),
            )
        except DomainError as exc:
            page.refused(exc)
        else:
            messages.success(request, f"Rollout '{key}' settings saved.")
            return redirect("rollout-page", key=key)
    return render(request, "rollout/form.html", page.context(), status=page.status)
