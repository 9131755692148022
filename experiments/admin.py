from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect

from common.errors import DomainError
from experiments.models import Event, Experiment, ExperimentMetric, Exposure, Metric, Variant
from experiments.services import editing, lifecycle, policy


class MetricForm(forms.ModelForm):
    """The admin obeys the service's rules for capping and ratio metrics
    (lifecycle.check_metric_definition)."""

    class Meta:
        model = Metric
        fields = "__all__"  # noqa: DJ007 - the admin edits every field of a metric

    def clean(self):
        data = super().clean()
        try:
            lifecycle.check_metric_definition(
                kind=data.get("kind") or "",
                cap_kind=data.get("cap_kind") or "",
                cap_value=data.get("cap_value"),
                numerator=data.get("numerator"),
                denominator=data.get("denominator"),
            )
        except DomainError as exc:
            raise ValidationError({exc.field or "kind": exc.message}) from exc
        return data


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    form = MetricForm
    list_display = ("key", "name", "kind", "higher_is_better", "missing_as_zero", "created_at")
    list_filter = ("kind", "higher_is_better", "missing_as_zero")
    search_fields = ("key", "name")

    def save_model(self, request, obj, form, change):
        if change:
            # Through the service: what the analysis reads stays once an experiment started.
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            changes.pop("key", None)
            if changes:
                editing.update_metric(metric=obj, changes=changes)
            return
        # A new metric goes through the service, as the API's and the pages' do.
        created = lifecycle.create_metric(**{name: getattr(obj, name) for name in METRIC_FIELDS})
        obj.pk = created.pk
        obj.refresh_from_db()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:  # the service refused the change; nothing was saved
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


METRIC_FIELDS = (
    "key",
    "name",
    "description",
    "kind",
    "higher_is_better",
    "missing_as_zero",
    "unit_aggregation",
    "cap_kind",
    "cap_value",
    "numerator",
    "denominator",
)


def _refusals(experiment, edit: editing.ExperimentEdit) -> list[str]:
    """The edit rule's reasons (experiments.services.editing), for a saved experiment."""
    if experiment is None or experiment.pk is None:
        return []
    stored = Experiment.objects.get(pk=experiment.pk)  # the row as it is, not the form's copy
    return [problem.message for problem in editing.edit_problems(stored, edit)]


class VariantFormSet(BaseInlineFormSet):
    """The admin obeys the service's rules (lifecycle.check_variants): two
    variants or more, exactly one control, weights in (0, 1e6], payloads that
    can be stored."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return  # each form shows its own errors first
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        try:
            specs = [
                lifecycle.VariantSpec(
                    key=data.get("key") or "",
                    name=data.get("name") or "",
                    weight=data.get("weight") if data.get("weight") is not None else 1.0,
                    is_control=bool(data.get("is_control")),
                    payload=data.get("payload") if data.get("payload") is not None else {},
                )
                for data in sorted(kept, key=lambda d: d.get("position") or 0)
            ]
            lifecycle.check_variants(specs)
        except DomainError as exc:
            raise ValidationError(exc.message) from exc
        refused = _refusals(self.instance, editing.ExperimentEdit(variants=specs))
        if refused:
            raise ValidationError(refused)


class ExperimentMetricFormSet(BaseInlineFormSet):
    """Metrics may change while an experiment runs, not once it stopped."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms) or not self.has_changed():
            return
        if self.instance.pk is not None and self.instance.status in (
            Experiment.Status.STOPPED,
            Experiment.Status.ARCHIVED,
        ):
            specs = [
                lifecycle.MetricSpec(metric=data["metric"].key, role=data.get("role") or "primary")
                for form in self.forms
                if (data := form.cleaned_data) and not data.get("DELETE") and data.get("metric")
            ]
            refused = _refusals(self.instance, editing.ExperimentEdit(metrics=specs))
            if refused:
                raise ValidationError(refused)


class ExperimentAdminForm(forms.ModelForm):
    """The experiment's own fields under the edit rule and the policy's checks."""

    class Meta:
        model = Experiment
        fields = [
            "key",
            "name",
            "hypothesis",
            "owner",
            "traffic_percent",
            "alpha",
            "sequential",
            "correction",
            "cuped_lookback_days",
            "exclude_carryover",
            "decision_policy",
        ]

    def clean_decision_policy(self):
        try:
            return policy.check_decision_policy(self.cleaned_data.get("decision_policy") or {})
        except DomainError as exc:
            raise ValidationError(exc.message) from exc

    def clean(self):
        data = super().clean()
        if self.instance.pk is None or self.errors:
            return data
        judged = ("name", "hypothesis", *editing.SETTINGS_FIELDS)
        changes = {name: data.get(name) for name in self.changed_data if name in judged}
        if changes.get("owner") is None:
            changes.pop("owner", None)
        if "decision_policy" in changes and changes["decision_policy"] == (
            self.instance.decision_policy or {}
        ):
            del changes["decision_policy"]
        for message in _refusals(self.instance, editing.ExperimentEdit(**changes)):
            raise ValidationError(message)
        return data


class VariantInline(admin.TabularInline):
    model = Variant
    formset = VariantFormSet
    extra = 2
    fields = ("position", "key", "name", "weight", "is_control", "payload")


class ExperimentMetricInline(admin.TabularInline):
    model = ExperimentMetric
    formset = ExperimentMetricFormSet
    extra = 0
    autocomplete_fields = ("metric",)


def _plain(value: Any) -> Any:
    """A form value as the audit log stores it: a related object by its id."""
    return value.pk if isinstance(value, models.Model) else value


def _label(obj: models.Model) -> str:
    return getattr(obj, "key", None) or obj.metric.key  # a variant, or a metric of it


def _values(obj: models.Model) -> dict[str, Any]:
    return {
        field.attname: getattr(obj, field.attname)
        for field in obj._meta.concrete_fields
        if field.name not in ("id", "experiment")
    }


def _lifecycle_action(service, verb: str):
    def action(modeladmin, request, queryset):
        for experiment in queryset:
            try:
                service(experiment=experiment, by=request.user)
                modeladmin.message_user(request, f"{experiment.key}: done ({verb}).")
            except DomainError as exc:
                modeladmin.message_user(request, exc.message, level=messages.ERROR)

    action.short_description = f"{verb.capitalize()} the selected experiments"
    action.__name__ = f"{verb}_experiments"
    return action


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentAdminForm
    list_display = ("key", "name", "status", "traffic_percent", "alpha", "owner", "created_at")
    list_filter = ("status",)
    search_fields = ("key", "name", "hypothesis")
    readonly_fields = (
        "seed",
        "status",
        "started_at",
        "stopped_at",
        "archived_at",
        "created_at",
        "updated_at",
    )
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    inlines = [VariantInline, ExperimentMetricInline]
    actions = [
        _lifecycle_action(lifecycle.start_experiment, "start"),
        _lifecycle_action(lifecycle.stop_experiment, "stop"),
        _lifecycle_action(lifecycle.archive_experiment, "archive"),
    ]

    # The change form runs in one transaction; the audit entries written here
    # commit with the edit or not at all.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            lifecycle.audit_experiment_edit(
                experiment=obj,
                before={name: _plain(form.initial.get(name)) for name in form.changed_data},
                after={name: _plain(form.cleaned_data.get(name)) for name in form.changed_data},
                by=request.user,
            )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            lifecycle.audit_experiment_created(experiment=form.instance, by=request.user)
            return
        # Variants and metrics edited inline: one more entry, with the rows each
        # table gained (None before), lost (None after) and the fields it changed.
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for formset in formsets:
            old, new = {}, {}
            for obj in formset.deleted_objects:
                old[_label(obj)], new[_label(obj)] = _values(obj), None
            for obj in formset.new_objects:
                old[_label(obj)], new[_label(obj)] = None, _values(obj)
            initial = {f.instance.pk: f.initial for f in formset.initial_forms}
            for obj, fields in formset.changed_objects:
                # A form may call a field changed whose value is the same ("{}" and {}).
                was = {f: _plain(initial[obj.pk].get(f)) for f in fields}
                now = {f: _plain(getattr(obj, f)) for f in fields}
                differ = [f for f in fields if was[f] != now[f]]
                if differ:
                    old[_label(obj)] = {f: was[f] for f in differ}
                    new[_label(obj)] = {f: now[f] for f in differ}
            if old or new:
                before[formset.prefix], after[formset.prefix] = old, new
        lifecycle.audit_experiment_edit(
            experiment=form.instance, before=before, after=after, by=request.user
        )


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    list_display = ("unit_id", "experiment", "variant", "exposed_at", "stage")
    list_filter = ("experiment", "stage")
    search_fields = ("unit_id",)
    list_select_related = ("experiment", "variant")
    raw_id_fields = ("experiment", "variant")
    date_hierarchy = "exposed_at"
    show_full_result_count = False  # counting millions of rows on every page is slow


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "unit_id", "metric", "value", "timestamp", "received_at")
    list_filter = ("metric",)
    search_fields = ("event_id", "unit_id")
    list_select_related = ("metric",)
    raw_id_fields = ("metric",)
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False  # events are facts; they are never edited
