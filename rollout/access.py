"""Who may do what to a rollout: one place for the API, the pages, the admin
and the services. Each step names the permission it needs; deciding a
transition also needs someone other than its requester."""

from typing import Any

from rollout.plan import Step

STEP_PERMISSION = {
    Step.ADVANCE: "rollout.request_transition",
    Step.PAUSE: "rollout.rollback_rollout",
    Step.RESUME: "rollout.rollback_rollout",
    Step.ROLLBACK: "rollout.rollback_rollout",
    Step.REARM: "rollout.rollback_rollout",
    Step.COMPLETE: "rollout.request_transition",
    Step.CHANGE_SETTINGS: "rollout.change_rollout",
}
DECIDE_PERMISSION = "rollout.approve_transition"


def may(user: Any, step: Step) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if step is Step.CHANGE_SETTINGS and is_executive(user):
        return True  # executives decide the changes that loosen safety, so they may make them
    return bool(user.has_perm(STEP_PERMISSION[step]))


def is_executive(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(DECIDE_PERMISSION))


def why_not_decide(user: Any, transition: Any) -> str | None:
    """None when `user` may approve or reject `transition`, else the reason."""
    if not is_executive(user):
        return (
            "Only a user with the approve_transition permission (an executive) can decide "
            "stage transitions."
        )
    if transition.requested_by_id is not None and transition.requested_by_id == user.id:
        return "The requester cannot decide their own transition."
    return None


def may_decide(user: Any, transition: Any) -> bool:
    return why_not_decide(user, transition) is None
