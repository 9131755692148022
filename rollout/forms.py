"""The dashboard forms of a rollout: its stage plan and thresholds as fields.
They only parse what a person typed; the rules are `rollout.plan`
(Plan.parse, parse_thresholds, check_threshold_bands) as called by
`lifecycle.validated_settings` inside create_rollout and change_settings,
whose messages the page shows next to the part they are about."""

from typing import Any

from django import forms

from common.form_rows import LabelledRowsFormSet
from experiments.models import Experiment
from rollout.models import KEY_MAX_LENGTH, Rollout, default_rollback, default_sla, default_stages
from rollout.plan import MAX_LATENCY_MS, MAX_STAGE_HOURS, MAX_STAGES, Role
from rollout.services.lifecycle import MAX_ALLOW_LIST, MAX_MIN_REQUESTS

PERCENT = 100.0
KNOWN_FEATURES = ("recommendations", "conversations")
THRESHOLD_SETS = ("sla", "rollback")


def _rate_field(label: str, help_text: str) -> forms.FloatField:
    return forms.FloatField(min_value=0, max_value=100, label=label, help_text=help_text)


class RolloutForm(forms.Form):
    key = forms.SlugField(max_length=KEY_MAX_LENGTH)
    name = forms.CharField(max_length=200)
    feature = forms.SlugField(
        max_length=KEY_MAX_LENGTH,
        help_text="The feature whose requests this rollout routes; one live rollout per feature.",
        widget=forms.TextInput(attrs={"list": "known-features"}),
    )
    experiment = forms.ModelChoiceField(
        queryset=Experiment.objects.exclude(status=Experiment.Status.ARCHIVED).order_by("key"),
        to_field_name="key",
        required=False,
        empty_label="— none —",
        help_text="At the experiment stage its assignment decides who gets the new version.",
    )
    sla_max_error_rate = _rate_field("Error rate below (%)", "e.g. 0.5")
    sla_max_p95_ms = forms.FloatField(
        min_value=0, max_value=MAX_LATENCY_MS, label="P95 latency below (ms)"
    )
    sla_min_availability = _rate_field("Availability above (%)", "e.g. 99.95")
    rollback_max_error_rate = _rate_field("Error rate above (%)", "e.g. 1")
    rollback_max_p95_ms = forms.FloatField(
        min_value=0, max_value=MAX_LATENCY_MS, label="P95 latency above (ms)"
    )
    rollback_min_availability = _rate_field("Availability below (%)", "e.g. 99")
    min_requests = forms.IntegerField(
        min_value=0,
        max_value=MAX_MIN_REQUESTS,
        initial=0,
        label="Minimum requests for a verdict",
        help_text="A floor; the platform derives its own minimum from the thresholds.",
    )
    window_minutes = forms.IntegerField(
        min_value=1,
        max_value=60,
        initial=5,
        label="Health window (minutes)",
        help_text="The sliding window that drives the automatic rollback.",
    )
    allow_list = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Allow-list",
        help_text=f"Unit ids that get the new version at 0 %, one per line (at most "
        f"{MAX_ALLOW_LIST}).",
    )
    comment = forms.CharField(
        required=False, max_length=2000, label="Why (goes into the audit log)"
    )

    def __init__(self, *args: Any, rollout: Rollout | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rollout = rollout
        if rollout is not None:
            for name in ("key", "name", "feature", "experiment"):
                self.fields[name].disabled = True
                self.fields[name].required = False

    def clean_key(self) -> str:
        key = self.cleaned_data.get("key") or ""
        if self.rollout is None and key == "new":
            raise forms.ValidationError("'new' is reserved for the dashboard's pages.")
        return key

    def clean_allow_list(self) -> list[str]:
        lines = (self.cleaned_data.get("allow_list") or "").splitlines()
        return [line.strip() for line in lines if line.strip()]

    def thresholds(self, which: str) -> dict[str, float]:
        data = self.cleaned_data
        return {
            "max_error_rate": data[f"{which}_max_error_rate"] / PERCENT,
            "max_p95_ms": data[f"{which}_max_p95_ms"],
            "min_availability": data[f"{which}_min_availability"] / PERCENT,
        }


def rollout_initial(rollout: Rollout | None) -> dict[str, Any]:
    sla = rollout.sla if rollout else default_sla()
    rollback = rollout.rollback if rollout else default_rollback()
    initial: dict[str, Any] = {}
    for which, values in (("sla", sla), ("rollback", rollback)):
        initial[f"{which}_max_error_rate"] = round(values["max_error_rate"] * PERCENT, 10)
        initial[f"{which}_max_p95_ms"] = values["max_p95_ms"]
        initial[f"{which}_min_availability"] = round(values["min_availability"] * PERCENT, 10)
    if rollout is not None:
        initial.update(
            key=rollout.key,
            name=rollout.name,
            feature=rollout.feature,
            experiment=rollout.experiment.key if rollout.experiment else None,
            min_requests=rollout.min_requests,
            window_minutes=rollout.window_minutes,
            allow_list="\n".join(rollout.allow_list),
        )
    return initial


class StageForm(forms.Form):
    name = forms.SlugField(max_length=32)
    percent = forms.FloatField(min_value=0, max_value=100, label="Share (%)")
    min_duration_hours = forms.FloatField(
        min_value=0, max_value=MAX_STAGE_HOURS, initial=0, label="Minimum hours"
    )
    needs_approval = forms.BooleanField(required=False, initial=True, label="Needs approval")
    role = forms.ChoiceField(
        required=False,
        choices=[
            ("", "from the share"),
            (Role.CANARY.value, "canary"),
            (Role.EXPERIMENT.value, "experiment"),
        ],
        help_text="0 % is staff only and 100 % full; with a linked experiment the last stage "
        "in between is the experiment stage unless one says so.",
    )

    def stage(self) -> dict[str, Any]:
        data = self.cleaned_data
        stage = {
            "name": data["name"],
            "percent": data["percent"],
            "min_duration_hours": data["min_duration_hours"],
            "needs_approval": bool(data.get("needs_approval")),
        }
        if data.get("role"):
            stage["role"] = data["role"]
        return stage


class BaseStageFormSet(LabelledRowsFormSet):
    def stages(self) -> list[dict[str, Any]]:
        return [
            form.stage()
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


StageFormSet = forms.formset_factory(
    StageForm,
    formset=BaseStageFormSet,
    extra=0,
    can_delete=True,
    max_num=MAX_STAGES,
    validate_max=True,
)


def stages_initial(rollout: Rollout | None) -> list[dict[str, Any]]:
    stages = rollout.stages if rollout else default_stages()
    return [
        {
            "name": s["name"],
            "percent": s["percent"],
            "min_duration_hours": s.get("min_duration_hours", 0),
            "needs_approval": s.get("needs_approval", True),
            # The stored plan names every role; the form shows only a chosen one.
            "role": s.get("role") if s.get("role") in (Role.CANARY, Role.EXPERIMENT) else "",
        }
        for s in stages
    ]
