from django.contrib import admin, messages

from common.errors import DomainError
from rollout.models import (
    AuditEntry,
    HealthVerdict,
    MetricWindow,
    Notification,
    NotificationChannel,
    Rollout,
    StageTransition,
)
from rollout.services import lifecycle


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "feature", "state", "stage", "canary_percent", "experiment")
    list_filter = ("state", "stage", "feature")
    search_fields = ("key", "name")
    list_select_related = ("experiment",)
    raw_id_fields = ("experiment",)
    readonly_fields = (
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
    actions = ["roll_back", "re_arm"]

    @admin.action(description="Roll back the selected rollouts (everyone to stable)")
    def roll_back(self, request, queryset):
        for rollout in queryset:
            done = lifecycle.rollback_rollout(
                rollout=rollout,
                reason=f"rolled back from the admin by {request.user}",
                by=request.user,
            )
            self.message_user(
                request,
                f"{rollout.key}: rolled back."
                if done
                else f"{rollout.key}: already {rollout.state}.",
            )

    @admin.action(description="Re-arm the selected rolled-back rollouts")
    def re_arm(self, request, queryset):
        for rollout in queryset:
            try:
                lifecycle.rearm_rollout(rollout=rollout, by=request.user)
                self.message_user(request, f"{rollout.key}: re-armed.")
            except DomainError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)


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


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "rollout", "actor", "action", "message")
    list_filter = ("action",)
    search_fields = ("message",)
    list_select_related = ("rollout", "actor")
    date_hierarchy = "created_at"

    # Append-only, the admin included.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
