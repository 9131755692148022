"""The rollout audit log moves into the typed log of common.AuditEntry.

Every rollout.AuditEntry row is copied with its time, actor, message and
data; its free-text action becomes an AuditAction (see `current_action`).
Then the old table's trigger goes (it refuses deletes; PostgreSQL only) and
the old table with it.

Reversing recreates the old table and copies the rollout entries back under
their old names. The entries stay in common.AuditEntry, which is append-only:
the rows copied back carry `common_id`, and migrating forward again skips
them, so a round trip duplicates nothing."""

from django.db import migrations

# Old name → (new name, what the old name said that the new one no longer does).
LEGACY_ACTIONS: dict[str, tuple[str, dict]] = {
    "rollout_created": ("rollout_created", {}),
    "transition_requested": ("requested", {}),
    "transition_approved": ("approved", {}),
    "transition_applied": ("applied", {}),
    "transition_rejected": ("rejected", {}),
    "transition_invalidated": ("invalidated", {}),
    "rollback_automatic": ("rolled_back", {"automatic": True}),
    "rollback_manual": ("rolled_back", {"automatic": False}),
    "rollout_rearmed": ("rearmed", {}),
    "health_degraded": ("health_degraded", {}),
    "health_failing": ("health_failing", {}),
}

# A copy of common.models.AuditAction's values as they were when this
# migration was written: a migration must not change with the code.
CURRENT_ACTIONS = frozenset(
    {
        "rollout_created",
        "requested",
        "approved",
        "rejected",
        "applied",
        "invalidated",
        "rolled_back",
        "paused",
        "resumed",
        "rearmed",
        "completed",
        "thresholds_changed",
        "plan_changed",
        "health_degraded",
        "health_failing",
        "health_recovered",
        "experiment_created",
        "experiment_started",
        "experiment_stopped",
        "experiment_edited",
    }
)


def current_action(action: str, data: dict) -> tuple[str, dict]:
    """The AuditAction value and the data of an old entry.

    The known old names map one to one (a rollback keeps whether it was
    automatic). Any other name is kept in `data["legacy_action"]` and mapped
    to the closest value:
    - a current value as it is (written by code that already used them);
    - without a `transition_` or `rollout_` prefix, if that is a value
      (`rollout_paused` → paused, `transition_approved` → approved);
    - anything starting with `rollback` → rolled_back;
    - `health_healthy` / `health_recovered…` → health_recovered, any other
      `health_…` → health_degraded (the old log recorded only bad health);
    - a name about thresholds or the SLA → thresholds_changed;
    - anything else → plan_changed, the most general change to a rollout;
      its message and `legacy_action` still say what it was."""
    data = dict(data or {})
    if action in LEGACY_ACTIONS:
        new, extra = LEGACY_ACTIONS[action]
        return new, {**data, **extra}
    if action in CURRENT_ACTIONS:
        return action, data
    data["legacy_action"] = action
    for prefix in ("transition_", "rollout_"):
        if action.startswith(prefix) and action.removeprefix(prefix) in CURRENT_ACTIONS:
            return action.removeprefix(prefix), data
    if action.startswith("rollback"):
        return "rolled_back", data
    if action.startswith("health_"):
        healthy = action in ("health_healthy", "health_ok") or action.startswith("health_recover")
        return ("health_recovered" if healthy else "health_degraded"), data
    if "threshold" in action or "sla" in action.split("_"):
        return "thresholds_changed", data
    return "plan_changed", data


def legacy_action(action: str, data: dict) -> tuple[str, dict]:
    """The inverse of `current_action`, for migrating backwards."""
    data = dict(data or {})
    if "legacy_action" in data:
        return data.pop("legacy_action"), data
    if action == "rolled_back":
        automatic = data.pop("automatic", False)
        return ("rollback_automatic" if automatic else "rollback_manual"), data
    for old, (new, extra) in LEGACY_ACTIONS.items():
        if new == action and not extra:
            return old, data
    return action, data


BATCH = 2000


def copy_forward(apps, schema_editor):
    Old = apps.get_model("rollout", "AuditEntry")
    New = apps.get_model("common", "AuditEntry")
    # The historical model would stamp every copy with the time of this
    # migration; the copies keep the time of the original.
    created_at = New._meta.get_field("created_at")
    created_at.auto_now_add = False
    try:
        batch = []
        rows = Old.objects.order_by("id").values(
            "rollout_id", "rollout__key", "actor_id", "action", "message", "data", "created_at"
        )
        for row in rows.iterator(chunk_size=BATCH):
            data = row["data"] if isinstance(row["data"], dict) else {"value": row["data"]}
            if "common_id" in data:  # copied back by a reverse run: already in common
                continue
            action, data = current_action(row["action"], data)
            batch.append(
                New(
                    action=action,
                    object_type="rollout",
                    # An entry without a rollout never existed in practice; 0 / "" keep it.
                    object_id=row["rollout_id"] or 0,
                    object_key=row["rollout__key"] or "",
                    actor_id=row["actor_id"],
                    message=row["message"],
                    data=data,
                    created_at=row["created_at"],
                )
            )
            if len(batch) >= BATCH:
                New.objects.bulk_create(batch)
                batch = []
        New.objects.bulk_create(batch)
    finally:
        created_at.auto_now_add = True


def copy_back(apps, schema_editor):
    Old = apps.get_model("rollout", "AuditEntry")
    New = apps.get_model("common", "AuditEntry")
    Rollout = apps.get_model("rollout", "Rollout")
    existing = set(Rollout.objects.values_list("id", flat=True))
    created_at = Old._meta.get_field("created_at")
    created_at.auto_now_add = False
    try:
        batch = []
        rows = New.objects.filter(object_type="rollout").order_by("id")
        for entry in rows.iterator(chunk_size=BATCH):
            action, data = legacy_action(entry.action, entry.data)
            batch.append(
                Old(
                    rollout_id=entry.object_id if entry.object_id in existing else None,
                    actor_id=entry.actor_id,
                    action=action,
                    message=entry.message,
                    data={**data, "common_id": entry.id},
                    created_at=entry.created_at,
                )
            )
            if len(batch) >= BATCH:
                Old.objects.bulk_create(batch)
                batch = []
        Old.objects.bulk_create(batch)
    finally:
        created_at.auto_now_add = True


OLD_TRIGGER = """
CREATE OR REPLACE FUNCTION rollout_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rollout_auditentry is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER rollout_audit_append_only
    BEFORE UPDATE OR DELETE ON rollout_auditentry
    FOR EACH ROW EXECUTE FUNCTION rollout_audit_append_only();
"""
DROP_OLD_TRIGGER = """
DROP TRIGGER IF EXISTS rollout_audit_append_only ON rollout_auditentry;
DROP FUNCTION IF EXISTS rollout_audit_append_only();
"""


def drop_old_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_OLD_TRIGGER, params=None)


def add_old_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0004_lifecycle_state_machine"),
        ("common", "0004_audit_log"),
    ]

    operations = [
        migrations.RunPython(copy_forward, copy_back),
        migrations.RunPython(drop_old_trigger, add_old_trigger),
        migrations.DeleteModel(name="AuditEntry"),
    ]
