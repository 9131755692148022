"""Temporary: the rollout services' old way of writing the audit log, kept
while they move to `common.audit.write_audit(subject=rollout, …)`.
Delete this module once nothing imports it."""

from typing import Any

from common import audit
from common.models import AuditAction, AuditEntry
from rollout.models import Rollout

# Legacy names, removed once every caller passes AuditAction. Each maps to
# its AuditAction and to what the old name said that the new one does not
# (the same mapping as migration rollout 0005_audit_moves_to_common).
LEGACY_ACTIONS: dict[str, tuple[AuditAction, dict[str, Any]]] = {
    "transition_requested": (AuditAction.REQUESTED, {}),
    "transition_approved": (AuditAction.APPROVED, {}),
    "transition_applied": (AuditAction.APPLIED, {}),
    "transition_rejected": (AuditAction.REJECTED, {}),
    "transition_invalidated": (AuditAction.INVALIDATED, {}),
    "rollback_automatic": (AuditAction.ROLLED_BACK, {"automatic": True}),
    "rollback_manual": (AuditAction.ROLLED_BACK, {"automatic": False}),
    "rollout_rearmed": (AuditAction.REARMED, {}),
}


def write_audit(
    *,
    rollout: Rollout,
    action: AuditAction | str,
    message: str,
    actor: Any = None,
    **data: Any,
) -> AuditEntry:
    """Append one entry about `rollout`; call inside the transaction of the
    change it records. `action` is an AuditAction or one of the legacy names
    above; anything else raises ValueError."""
    if isinstance(action, str) and action in LEGACY_ACTIONS:
        action, extra = LEGACY_ACTIONS[action]
        data = {**extra, **data}
    return audit.write_audit(action=action, subject=rollout, message=message, actor=actor, **data)
