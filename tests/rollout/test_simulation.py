"""The simulated Phase 4 demo, driven through the real services."""

import pytest
from django.core.management import call_command

from common.models import AuditAction, AuditEntry
from experiments.models import Event, Exposure
from rollout.models import Rollout, StageTransition
from rollout.simulation import (
    CONVERSATIONS_ROLLOUT_KEY,
    ROLLOUT_KEY,
    SimulationConfig,
    simulate_phase4,
)

pytestmark = pytest.mark.django_db

SMALL = {
    "days": 7,
    "daily_users": 600,
    "population": 1400,
    # Important thresholds are judged on their corrected interval: on 1 400 units the
    # lifts must be well past +10 pp / +5 pp for the interval to clear them.
    "adoption_lift": 0.3,
    "completion_lift": 0.3,
    "traffic_hours": 1,
}


@pytest.fixture
def people(db):
    call_command("create_demo_accounts", force=True)


def test_the_demo_ends_at_the_ab_stage_with_a_pending_approval(people):
    result = simulate_phase4(SimulationConfig(**SMALL))
    rollout = Rollout.objects.get(key=ROLLOUT_KEY)
    assert (rollout.stage, rollout.state, rollout.canary_percent) == ("ab", "active", 50)
    assert result.verdict == "success"
    assert result.health == "healthy"
    pending = StageTransition.objects.get(status="pending", rollout__key="phase4-recommendations")
    assert (pending.from_stage, pending.to_stage) == ("ab", "full")
    assert pending.evidence["experiment"]["verdict"] == "success"
    assert Exposure.objects.filter(stage="canary").exists()  # carryover from the canary days
    platforms = set(
        Exposure.objects.filter(stage="ab").values_list("attributes__platform", flat=True)
    )
    assert platforms == {"ios", "android", "web"}  # for the segment breakdown
    assert Event.objects.filter(event_id__startswith="sim-").count() == result.events
    conversations = Rollout.objects.get(key=CONVERSATIONS_ROLLOUT_KEY)
    assert (conversations.stage, conversations.canary_percent) == ("canary", 5)
    assert conversations.verdicts.first().verdict == "healthy"


def test_an_injected_canary_fault_is_rolled_back(people):
    result = simulate_phase4(SimulationConfig(**SMALL, canary_fault=0.05))
    assert result.health == "failing"
    assert result.rollout_state == "rolled_back"
    assert result.pending_transition is None
    assert (
        AuditEntry.objects.filter(action=AuditAction.ROLLED_BACK, data__automatic=True).count() == 1
    )


def test_the_demos_pending_approval_is_still_approvable_an_hour_later(people, monkeypatch):
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from rollout.services.evaluation import evaluate_rollout
    from rollout.services.transitions import approve_transition

    result = simulate_phase4(SimulationConfig(**SMALL))
    start = timezone.now()
    for minutes in range(5, 65, 5):  # the beat goes on; the demo's traffic has stopped
        monkeypatch.setattr(timezone, "now", lambda m=minutes: start + timedelta(minutes=m))
        evaluate_rollout(rollout=Rollout.objects.get(key=ROLLOUT_KEY))
    pending = StageTransition.objects.get(id=result.pending_transition)
    assert pending.status == "pending"
    executive = get_user_model().objects.get(username="exec")
    applied = approve_transition(transition=pending, by=executive, comment="an hour later")
    assert applied.status == "applied"
    assert applied.decision_evidence["changes_since_request"] is not None
    assert Rollout.objects.get(key=ROLLOUT_KEY).canary_percent == 100
