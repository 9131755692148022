"""The dashboard forms that define experiments and metrics. They parse what a
person typed and explain what is wrong next to the field; the rules
themselves are the services' (lifecycle.check_variants, check_metrics,
policy.check_decision_policy, editing.edit_problems), whose DomainError
messages are attached to the form here."""

import json
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from common import validation
from common.errors import DomainError
from common.form_rows import LabelledRowsFormSet
from experiments.models import KEY_MAX_LENGTH, Experiment, ExperimentMetric, Metric
from experiments.services import editing, lifecycle, policy

PERCENT = 100.0
# Paths of the experiment pages that a key would shadow (experiments.page_urls).
RESERVED_KEYS = frozenset({"new", "metrics"})


class MetricForm(forms.Form):
    key = forms.SlugField(
        max_length=KEY_MAX_LENGTH,
        help_text="Letters, digits, '-' or '_'; events name the metric by this key.",
    )
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(
        choices=Metric.Kind.choices,
        help_text="Binomial: a unit converted if it sent at least one event after exposure. "
        "Mean: the average of the per-unit values.",
    )
    unit_aggregation = forms.ChoiceField(
        choices=Metric.UnitAggregation.choices,
        initial=Metric.UnitAggregation.SUM,
        help_text="How a mean metric combines several events of one unit.",
    )
    higher_is_better = forms.BooleanField(required=False, initial=True)
    missing_as_zero = forms.BooleanField(
        required=False,
        initial=True,
        label="Units without events count as 0",
        help_text="Off leaves them out (e.g. a 1–5 rating only some units give).",
    )

    def __init__(self, *args: Any, metric: Metric | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if metric is not None:
            self.fields["key"].disabled = True
            self.fields["key"].required = False
            self.fields["key"].help_text = "Fixed at creation: events name the metric by it."


def _users():
    return get_user_model().objects.filter(is_active=True).order_by("username")


class ExperimentForm(forms.Form):
    """The experiment's own fields and its decision policy, as fields."""

    key = forms.SlugField(
        max_length=KEY_MAX_LENGTH,
        help_text="Letters, digits, '-' or '_'; integrations name the experiment by it.",
    )
    name = forms.CharField(max_length=200)
    hypothesis = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    owner = forms.ModelChoiceField(queryset=_users(), to_field_name="username")
    traffic_percent = forms.FloatField(
        label="Traffic (%)",
        min_value=0,
        max_value=100,
        initial=100,
        help_text="Share of units in the experiment. While it runs it may only rise.",
    )
    alpha = forms.FloatField(
        label="α (significance level)",
        initial=0.05,
        help_text="Two-sided, between 0 and 0.5. Changing it while the experiment runs "
        "changes every interval shown so far; it is audited.",
    )
    sequential = forms.BooleanField(
        required=False,
        initial=True,
        label="Always-valid (sequential) inference",
        help_text="Safe to look at the results at any time.",
    )
    correction = forms.ChoiceField(
        choices=[("holm", "Holm"), ("bh", "Benjamini–Hochberg")],
        initial="holm",
        label="Multiple-testing correction",
    )
    cuped_lookback_days = forms.IntegerField(
        label="CUPED look-back (days)",
        min_value=0,
        max_value=lifecycle.MAX_CUPED_DAYS,
        initial=14,
        help_text="0 turns CUPED off.",
    )
    exclude_carryover = forms.BooleanField(
        required=False,
        initial=True,
        label="Leave out units first exposed during a linked rollout's canary",
    )
    # The decision policy (experiments.decision), field by field.
    require_primary_significant = forms.BooleanField(
        required=False,
        initial=True,
        label="Require a primary metric significantly better",
    )
    max_error_rate_percent = forms.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        label="Treatment error rate below (%)",
        help_text="From the linked rollout's health; empty: no limit.",
    )
    max_p95_ms = forms.FloatField(
        required=False,
        min_value=0,
        max_value=policy.MAX_LATENCY_MS,
        label="Treatment P95 latency below (ms)",
        help_text="Empty: no limit.",
    )
    important_needed = forms.IntegerField(
        min_value=0,
        max_value=policy.MAX_IMPORTANT_RULES,
        label="Important improvements needed",
        help_text="How many of the important improvements below must be met for success.",
    )

    def __init__(self, *args: Any, experiment: Experiment | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.experiment = experiment
        if experiment is not None:
            self.fields["key"].disabled = True
            self.fields["key"].required = False
            self.fields["key"].help_text = "Fixed at creation."

    def clean_key(self) -> str:
        key = self.cleaned_data.get("key") or ""
        if self.experiment is None and key in RESERVED_KEYS:
            raise ValidationError(f"'{key}' is reserved for the dashboard's pages; choose another.")
        return key

    def clean_alpha(self) -> float:
        alpha = self.cleaned_data["alpha"]
        if not 0 < alpha < 0.5:
            raise ValidationError("α must be between 0 and 0.5 (e.g. 0.05).")
        return alpha

    def policy_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        rate = data.get("max_error_rate_percent")
        return {
            "require_primary_significant": bool(data.get("require_primary_significant")),
            "max_error_rate": rate / PERCENT if rate is not None else None,
            "max_p95_ms": data.get("max_p95_ms"),
            "important_needed": data.get("important_needed"),
        }


def experiment_initial(experiment: Experiment | None, *, owner: Any) -> dict[str, Any]:
    """The form's starting values: the experiment's, or the defaults."""
    full = policy.full_policy(experiment.decision_policy if experiment else None)
    rate = full["max_error_rate"]
    initial: dict[str, Any] = {
        "owner": owner.username if owner is not None else None,
        "require_primary_significant": full["require_primary_significant"],
        "max_error_rate_percent": round(rate * PERCENT, 10) if rate is not None else None,
        "max_p95_ms": full["max_p95_ms"],
        "important_needed": full["important_needed"],
    }
    if experiment is not None:
        initial.update(
            {
                name: getattr(experiment, name)
                for name in (
                    "key",
                    "name",
                    "hypothesis",
                    "traffic_percent",
                    "alpha",
                    "sequential",
                    "correction",
                    "cuped_lookback_days",
                    "exclude_carryover",
                )
            }
        )
        if experiment.owner is not None:
            initial["owner"] = experiment.owner.username
    return initial


class VariantForm(forms.Form):
    key = forms.SlugField(max_length=KEY_MAX_LENGTH)
    name = forms.CharField(max_length=200, required=False)
    weight = forms.FloatField(initial=1, help_text="Relative: 1, 1, 1 splits in thirds.")
    is_control = forms.BooleanField(required=False, label="Control")
    payload = forms.CharField(
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 1, "class": "json"}),
        help_text='JSON handed to the units of this variant, e.g. {"engine": "v2"}.',
    )

    def clean_weight(self) -> float:
        try:
            return validation.check_weight(self.cleaned_data["weight"])
        except validation.Invalid as exc:
            raise ValidationError(exc.message) from exc

    def clean_payload(self) -> Any:
        raw = (self.cleaned_data.get("payload") or "").strip() or "{}"
        try:
            return validation.check_json(validation.parse_json(raw))
        except validation.Invalid as exc:
            raise ValidationError(f"Payload: {exc.message}") from exc


class BaseVariantFormSet(LabelledRowsFormSet):
    def specs(self) -> list[lifecycle.VariantSpec]:
        return [
            lifecycle.VariantSpec(
                key=form.cleaned_data["key"],
                name=form.cleaned_data.get("name") or "",
                weight=form.cleaned_data["weight"],
                is_control=bool(form.cleaned_data.get("is_control")),
                payload=form.cleaned_data.get("payload", {}),
            )
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        if any(self.errors):
            return
        try:
            lifecycle.check_variants(self.specs())
        except DomainError as exc:
            raise ValidationError(exc.message) from exc


VariantFormSet = forms.formset_factory(
    VariantForm, formset=BaseVariantFormSet, extra=0, can_delete=True, max_num=20, validate_max=True
)


class MetricLinkForm(forms.Form):
    metric = forms.ModelChoiceField(queryset=Metric.objects.all(), to_field_name="key")
    role = forms.ChoiceField(choices=ExperimentMetric.Role.choices)
    min_effect = forms.FloatField(
        required=False,
        label="Minimum effect",
        help_text="Smallest absolute effect worth acting on; sizes the sample.",
    )


class BaseMetricLinkFormSet(LabelledRowsFormSet):
    def specs(self) -> list[lifecycle.MetricSpec]:
        return [
            lifecycle.MetricSpec(
                metric=form.cleaned_data["metric"].key,
                role=form.cleaned_data["role"],
                min_effect=form.cleaned_data.get("min_effect"),
            )
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        if any(self.errors):
            return
        try:
            lifecycle.check_metrics(self.specs())
        except DomainError as exc:
            raise ValidationError(exc.message) from exc


MetricLinkFormSet = forms.formset_factory(
    MetricLinkForm,
    formset=BaseMetricLinkFormSet,
    extra=0,
    can_delete=True,
    max_num=50,
    validate_max=True,
)


class ImportantRuleForm(forms.Form):
    """One "important improvement" of the decision policy."""

    metric = forms.ModelChoiceField(queryset=Metric.objects.all(), to_field_name="key")
    threshold_kind = forms.ChoiceField(
        choices=[("absolute", "absolute (metric units)"), ("relative", "relative (%)")],
        label="Threshold in",
    )
    threshold = forms.FloatField(help_text="e.g. 0.1 absolute = +10 pp, or 100 relative = +100 %.")
    label = forms.CharField(max_length=policy.LABEL_MAX_LENGTH, required=False)

    def rule(self) -> dict[str, Any]:
        data = self.cleaned_data
        kind, value = data["threshold_kind"], data["threshold"]
        rule: dict[str, Any] = {"metric": data["metric"].key}
        if kind == "relative":
            rule["min_relative"] = value / PERCENT
        else:
            rule["min_absolute"] = value
        if data.get("label"):
            rule["label"] = data["label"]
        return rule


class BaseImportantRuleFormSet(LabelledRowsFormSet):
    def rules(self) -> list[dict[str, Any]]:
        return [
            form.rule()
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


ImportantRuleFormSet = forms.formset_factory(
    ImportantRuleForm,
    formset=BaseImportantRuleFormSet,
    extra=0,
    can_delete=True,
    max_num=policy.MAX_IMPORTANT_RULES,
    validate_max=True,
)


def important_initial(experiment: Experiment | None) -> list[dict[str, Any]]:
    rules = policy.full_policy(experiment.decision_policy if experiment else None)["important"]
    known = set(
        Metric.objects.filter(key__in=[r["metric"] for r in rules]).values_list("key", flat=True)
    )
    initial = []
    for rule in rules:
        if rule["metric"] not in known:
            continue  # a default rule naming a metric this installation does not have
        relative = "min_relative" in rule
        initial.append(
            {
                "metric": rule["metric"],
                "threshold_kind": "relative" if relative else "absolute",
                "threshold": round(rule["min_relative"] * PERCENT, 10)
                if relative
                else rule["min_absolute"],
                "label": rule.get("label", ""),
            }
        )
    return initial


def variants_initial(experiment: Experiment | None) -> list[dict[str, Any]]:
    if experiment is None:
        return [
            {"key": "control", "name": "Control", "weight": 1, "is_control": True, "payload": "{}"},
            {"key": "treatment", "name": "Treatment", "weight": 1, "payload": "{}"},
        ]
    return [
        {**v, "payload": json.dumps(v["payload"], ensure_ascii=False)}
        for v in editing.stored_variants(experiment)
    ]


def metrics_initial(experiment: Experiment | None) -> list[dict[str, Any]]:
    return editing.stored_metrics(experiment) if experiment is not None else []
