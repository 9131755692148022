from typing import Any

from rollout.models import AuditEntry, Rollout


def write_audit(
    *, rollout: Rollout | None, action: str, message: str, actor: Any = None, **data: Any
) -> AuditEntry:
    """Append one entry; call inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        rollout=rollout,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        message=message,
        data=data,
    )
