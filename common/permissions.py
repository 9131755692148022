from rest_framework.permissions import BasePermission


def has_perm(codename: str) -> type[BasePermission]:
    """A DRF permission class that requires one Django permission
    ("app_label.codename"); superusers pass."""

    class HasPerm(BasePermission):
        message = f"You do not have the '{codename}' permission needed for this action."

        def has_permission(self, request, view) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perm(codename))

    HasPerm.__name__ = f"HasPerm[{codename}]"
    return HasPerm


# Reading the audit log (API, pages, exports): product managers and executives
# (common migration 0004), superusers; not the integrations' tokens.
AUDIT_READ_PERMISSION = "common.view_auditentry"
CanReadAudit = has_perm(AUDIT_READ_PERMISSION)


def may_read_audit(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(AUDIT_READ_PERMISSION))
