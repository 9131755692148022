from django import forms
from django.contrib import admin, messages

from common.errors import DomainError
from rollout.models import (
    HealthVerdict,
    MetricWindow,
    Notification,
    NotificationChannel,
    Rollout,
    StageTransition,
    default_rollback,
    default_sla,
)
from rollout.plan import LIVE_STATES
from rollout.services import lifecycle


class RolloutForm(forms.ModelForm):
    """Validates through the same rules as the API: a rejected value is a
    form error, never a stored value that breaks the evaluation later."""

    class Meta:
        model = Rollout
        fields = [
            "key",
            "name",
            "feature",
            "experiment",
            "stages",
            "sla",
            "rollback",
            "min_requests",
            "window_minutes",
            "allow_list",
            "blame_canary_on_global_incident",
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            lifecycle.validated_settings(
                stages=data.get("stages") or [],
                sla={**default_sla(), **(data.get("sla") or {})},
                rollback={**default_rollback(), **(data.get("rollback") or {})},
                has_experiment=data.get("experiment") is not None,
                min_requests=data.get("min_requests") or 0,
                window_minutes=data.get("window_minutes") or 5,
                allow_list=list(data.get("allow_list") or []),
            )
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


# What the admin may change on an existing rollout, and only through
# lifecycle.change_settings (audited, validated, permission-checked).
SETTINGS_FIELDS = ("stages", "sla", "rollback", "min_requests", "window_minutes", "allow_list")


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    """Shows rollouts and calls the services. State, stage and share change
    only through the lifecycle actions; the plan and thresholds of a live
    rollout only through the audited settings change."""

    form = RolloutForm
    list_display = ("key", "name", "feature", "state", "stage", "canary_percent", "experiment")
    list_filter = ("state", "stage", "feature")
    search_fields = ("key", "name")
    list_select_related = ("experiment",)
    autocomplete_fields = ("experiment",)  # chosen by key or name, not typed as an id
    actions = ["roll_back", "re_arm", "pause", "resume", "complete"]
    ALWAYS_READ_ONLY = (
        "salt",
        "state",
        "stage",
        "canary_percent",
        "stage_entered_at",
        "rolled_back_at",
        "rollback_reason",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.ALWAYS_READ_ONLY
        fixed = (*self.ALWAYS_READ_ONLY, "key", "feature", "experiment")
        fixed += ("blame_canary_on_global_incident",)
        if obj.state not in LIVE_STATES:
            fixed += SETTINGS_FIELDS  # a finished rollout's record stays as it was
        return fixed

    def save_model(self, request, obj, form, change):
        if not change:
            created = lifecycle.create_rollout(
                key=obj.key,
                name=obj.name,
                feature=obj.feature,
                experiment=obj.experiment,
                stages=obj.stages,
                sla=obj.sla,
                rollback=obj.rollback,
                min_requests=obj.min_requests,
                window_minutes=obj.window_minutes,
                allow_list=obj.allow_list,
                by=request.user,
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        changed = [f for f in form.changed_data if f in SETTINGS_FIELDS]
        if "name" in form.changed_data:
            Rollout.objects.filter(id=obj.id).update(name=obj.name)
        if changed:
            current = Rollout.objects.select_related("experiment").get(id=obj.id)
            lifecycle.change_settings(
                rollout=current,
                by=request.user,
                comment="changed in the admin",
                **{f: form.cleaned_data[f] for f in changed},
            )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())

    def _each(self, request, queryset, service, verb: str, **kwargs) -> None:
        for rollout in queryset.select_related("experiment"):
            try:
                service(rollout=rollout, by=request.user, **kwargs)
                self.message_user(request, f"{rollout.key}: {verb}.")
            except DomainError as exc:
                self.message_user(request, f"{rollout.key}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Roll back the selected rollouts (everyone to stable)")
    def roll_back(self, request, queryset):
        for rollout in queryset:
            try:
                done = lifecycle.rollback_rollout(
                    rollout=rollout,
                    reason=f"rolled back from the admin by {request.user}",
                    by=request.user,
                )
            except DomainError as exc:
                self.message_user(request, f"{rollout.key}: {exc.message}", level=messages.ERROR)
                continue
            self.message_user(
                request,
                f"{rollout.key}: rolled back."
                if done
                else f"{rollout.key}: already {rollout.state}.",
            )

    @admin.action(description="Re-arm the selected rolled-back rollouts (first stage, 0 %)")
    def re_arm(self, request, queryset):
        self._each(request, queryset, lifecycle.rearm_rollout, "re-armed")

    @admin.action(description="Pause the selected rollouts")
    def pause(self, request, queryset):
        self._each(request, queryset, lifecycle.pause_rollout, "paused")

    @admin.action(description="Resume the selected paused rollouts")
    def resume(self, request, queryset):
        self._each(request, queryset, lifecycle.resume_rollout, "resumed")

    @admin.action(description="Complete the selected rollouts at their last stage")
    def complete(self, request, queryset):
        self._each(request, queryset, lifecycle.complete_rollout, "completed")


@admin.register(StageTransition)
class StageTransitionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "rollout",
        "from_stage",
        "to_stage",
        "status",
        "requested_by",
        "decided_by",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("rollout", "requested_by", "decided_by")
    raw_id_fields = ("rollout", "requested_by", "decided_by")
    readonly_fields = [f.name for f in StageTransition._meta.fields]

    def has_add_permission(self, request):
        return False  # requested through the API or the dashboard, with frozen evidence


@admin.register(MetricWindow)
class MetricWindowAdmin(admin.ModelAdmin):
    list_display = ("rollout", "version", "minute", "requests", "errors", "unavailable")
    list_filter = ("version",)
    list_select_related = ("rollout",)
    raw_id_fields = ("rollout",)
    date_hierarchy = "minute"
    show_full_result_count = False


@admin.register(HealthVerdict)
class HealthVerdictAdmin(admin.ModelAdmin):
    list_display = ("rollout", "evaluated_at", "verdict", "action", "global_incident")
    list_filter = ("verdict", "action")
    list_select_related = ("rollout",)
    raw_id_fields = ("rollout",)
    show_full_result_count = False


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "target", "enabled", "min_severity")
    list_filter = ("kind", "enabled")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "channel", "status", "attempts", "sent_at")
    list_filter = ("status", "event")
    list_select_related = ("channel",)
    raw_id_fields = ("channel", "rollout")
