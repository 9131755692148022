from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from common.errors import DomainError
from conversations.access import may_access_mentee_data
from conversations.models import ConversationSession, MemoryFact, Summary, Turn
from conversations.services import sessions


class MenteeDataAdmin(admin.ModelAdmin):
    """What a mentee said and what is remembered about them: shown only to those who may
    read a mentee's data (conversations.access), whatever model permissions they hold."""

    def has_view_permission(self, request, obj=None) -> bool:
        return may_access_mentee_data(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return may_access_mentee_data(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return may_access_mentee_data(request.user) and super().has_delete_permission(request, obj)


@admin.register(ConversationSession)
class ConversationSessionAdmin(admin.ModelAdmin):
    list_display = (
        "id", "user_id", "topic", "version", "status", "outcome", "rating", "started_at",
        "last_activity_at", "next_turn_index",
    )  # fmt: skip
    list_filter = ("status", "version", "outcome")
    search_fields = ("user_id", "topic")
    # Lifecycle fields change only through the services (the action below), never by editing.
    readonly_fields = (
        "user_id", "version", "topic", "status", "outcome", "rating", "started_at",
        "last_activity_at", "ended_at", "next_turn_index", "return_checked_at", "turns",
    )  # fmt: skip
    actions = ["end_abandoned"]

    # Turns are not inlined (a long session has thousands): a link to them instead.
    @admin.display(description="turns")
    def turns(self, session: ConversationSession) -> str:
        url = reverse("admin:conversations_turn_changelist")
        return format_html(
            '<a href="{}?session__id__exact={}">{} turns</a>',
            url,
            session.id,
            session.next_turn_index,
        )

    @admin.action(description="End the selected active sessions (outcome: abandoned)")
    def end_abandoned(self, request, queryset):
        ended = 0
        for session in queryset.filter(status=ConversationSession.Status.ACTIVE):
            try:
                sessions.end_session(
                    session_id=session.id, user_id=session.user_id, outcome="abandoned"
                )
                ended += 1
            except DomainError as exc:
                self.message_user(request, f"Session {session.id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Ended {ended} session(s).")


@admin.register(Turn)
class TurnAdmin(MenteeDataAdmin):
    list_display = (
        "id", "session", "index", "role", "short_text", "latency_ms", "tokens", "context_tokens",
        "backend", "degraded", "created_at",
    )  # fmt: skip
    # No filter on backend: its choices would be a DISTINCT over every turn.
    list_filter = ("role", "degraded")
    list_select_related = ("session",)
    raw_id_fields = ("session",)
    show_full_result_count = False  # COUNT(*) over every turn is the slow part of the page

    @admin.display(description="text")
    def short_text(self, turn: Turn) -> str:
        return turn.text[:80]


@admin.register(Summary)
class SummaryAdmin(MenteeDataAdmin):
    list_display = ("session", "up_to_index", "updated_at")
    list_select_related = ("session",)
    raw_id_fields = ("session",)


@admin.register(MemoryFact)
class MemoryFactAdmin(MenteeDataAdmin):
    list_display = ("user_id", "key", "value", "confidence", "source_turn", "updated_at")
    list_filter = ("key",)
    search_fields = ("user_id", "value")
    list_select_related = ("source_turn__session",)
    raw_id_fields = ("source_turn",)
