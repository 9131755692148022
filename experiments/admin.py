from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from common.errors import DomainError
from experiments.models import Event, Experiment, ExperimentMetric, Exposure, Metric, Variant
from experiments.services import lifecycle


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "kind", "higher_is_better", "missing_as_zero", "created_at")
    list_filter = ("kind", "higher_is_better", "missing_as_zero")
    search_fields = ("key", "name")


class VariantFormSet(BaseInlineFormSet):
    """The admin obeys the service's rules: two variants or more, exactly one control."""

    def clean(self):
        super().clean()
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if len(kept) < 2:
            raise ValidationError("An experiment needs at least two variants.")
        controls = sum(1 for data in kept if data.get("is_control"))
        if controls != 1:
            raise ValidationError(f"Exactly one variant must be the control; got {controls}.")


class VariantInline(admin.TabularInline):
    model = Variant
    formset = VariantFormSet
    extra = 2
    fields = ("position", "key", "name", "weight", "is_control", "payload")


class ExperimentMetricInline(admin.TabularInline):
    model = ExperimentMetric
    extra = 0
    autocomplete_fields = ("metric",)


def _lifecycle_action(service, verb: str):
    def action(modeladmin, request, queryset):
        for experiment in queryset:
            try:
                service(experiment=experiment)
                modeladmin.message_user(request, f"{experiment.key}: done ({verb}).")
            except DomainError as exc:
                modeladmin.message_user(request, exc.message, level=messages.ERROR)

    action.short_description = f"{verb.capitalize()} the selected experiments"
    action.__name__ = f"{verb}_experiments"
    return action


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "status", "traffic_percent", "alpha", "owner", "created_at")
    list_filter = ("status",)
    search_fields = ("key", "name", "hypothesis")
    readonly_fields = ("seed", "status", "started_at", "stopped_at", "created_at", "updated_at")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    inlines = [VariantInline, ExperimentMetricInline]
    actions = [
        _lifecycle_action(lifecycle.start_experiment, "start"),
        _lifecycle_action(lifecycle.stop_experiment, "stop"),
    ]


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
