"""The simulated Phase 4 demo, driven through the real services."""

import pytest
from django.core.management import call_command

from experiments.models import Event, Exposure
from rollout.models import AuditEntry, Rollout, StageTransition
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
    "adoption_lift": 0.2,
    "completion_lift": 0.2,
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
    pending = StageTransition.objects.get(status="pending")
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
    assert AuditEntry.objects.filter(action="rollback_automatic").count() == 1
