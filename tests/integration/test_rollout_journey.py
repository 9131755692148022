"""The whole rollout journey over HTTP, as people and the front end meet it,
with a real Celery worker and beat on PostgreSQL and Redis:

staff-only → canary → experiment → full, each step requested by a product
manager (or proposed by the platform) and approved by an executive in the
API, traffic of mentees through the v2 recommendation endpoint (routed,
exposed, counted by the middleware, flushed and judged by the beat), the
experiment analysed on their adoptions; after full, every fresh unit gets
the new version, and still does once the rollout is completed.

The same journey runs with the seed's stage names and with a plan of the
rollout's own names: routing and the gate follow stage roles, not names."""

import json
import random
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from experiments.models import Experiment
from recommendations.services import training
from rollout.models import Rollout
from tests.integration.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Loose thresholds keep the numbers of requests a verdict needs small, so the
# journey runs in well under a minute per plan; the rules are the production ones.
SLA = {"max_error_rate": 0.05, "max_p95_ms": 400.0, "min_availability": 0.99}
ROLLBACK = {"max_error_rate": 0.3, "max_p95_ms": 2000.0, "min_availability": 0.9}
PLANS = {
    "seed names": [
        {"name": "internal", "percent": 0},
        {"name": "canary", "percent": 25},
        {"name": "ab", "percent": 50},
        {"name": "full", "percent": 100, "min_duration_hours": 24},
    ],
    "own names": [
        {"name": "team", "percent": 0},
        {"name": "pilot", "percent": 30},
        {"name": "split", "percent": 50},
        # No minimum at 100 %: the platform completes the rollout by itself.
        {"name": "everyone", "percent": 100},
    ],
}


class Api:
    """A token client over real HTTP."""

    def __init__(self, base: str, user):
        self.base = base
        self.token = Token.objects.get_or_create(user=user)[0].key

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, {"raw": raw[:300].decode(errors="replace")}

    def post(self, path: str, body=None) -> tuple[int, dict]:
        return self.call("POST", path, body or {})

    def get(self, path: str) -> tuple[int, dict]:
        return self.call("GET", path)


def mentees_visit(front_end: Api, canary_label: str, users: range, *, adopt: bool = True) -> dict:
    """Each mentee asks for recommendations; those served the new version adopt
    more often (the effect the experiment should find)."""
    served = {"canary": 0, "stable": 0}
    rng = random.Random(users.start)
    for i in users:
        user = f"mentee-{i}"
        status, body = front_end.post("/api/v2/recommendations/", {"user_id": user, "k": 5})
        assert status == 200, body
        version = "canary" if body["version"] == canary_label else "stable"
        served[version] += 1
        if adopt and rng.random() < (0.7 if version == "canary" else 0.2):
            status, _ = front_end.post(
                "/api/v2/recommendations/feedback/",
                {"user_id": user, "item_id": body["items"][0]["item_id"], "action": "adopt"},
            )
            assert status == 201
    return served


def approve_next(pm: Api, executive: Api, key: str, to_stage: str) -> None:
    """The PM requests the step (the platform may have proposed it first);
    the executive approves whichever request is pending."""
    status, body = pm.post(f"/api/v1/rollouts/{key}/transitions/", {"to_stage": to_stage})
    assert status in (201, 409), body

    def pending():
        _, rows = executive.get(f"/api/v1/rollouts/{key}/transitions/")
        return next(
            (t for t in rows if t["status"] == "pending" and t["to_stage"] == to_stage), None
        )

    assert wait_for(lambda: pending() is not None, timeout=30), body
    transition = pending()
    status, decided = executive.post(
        f"/api/v1/transitions/{transition['id']}/approve/", {"comment": f"go {to_stage}"}
    )
    assert status == 200, decided
    assert decided["status"] == "applied"


def wait_until_gate_ready(api: Api, key: str, *, timeout: float = 60) -> dict:
    last = {}

    def ready():
        nonlocal last
        _, last = api.get(f"/api/v1/rollouts/{key}/")
        return last.get("gate", {}).get("ready")

    assert wait_for(ready, timeout=timeout, interval=1.0), last.get("gate")
    return last


@pytest.mark.parametrize("plan_name", list(PLANS))
def test_a_rollout_walks_to_100_percent_with_approvals_and_real_traffic(
    plan_name, live_server, redis_url, postgres, pm_user, executive, integration_user, tmp_path
):
    from recommendations.services import demo

    demo.seed_demo(seed=0, n_users=60, items_per_cluster=6)
    models = training.train_models(evaluate_first=False)
    canary_label = models.versions["ensemble"].label

    pm, executive_api = Api(live_server.url, pm_user), Api(live_server.url, executive)
    front_end = Api(live_server.url, integration_user)
    key = f"journey-{plan_name.replace(' ', '-')}"
    status, body = pm.post(
        "/api/v1/experiments/",
        {
            "key": f"{key}-exp",
            "name": "Recommendations v2",
            "traffic_percent": 100,
            "variants": [
                {"key": "control", "weight": 1, "is_control": True},
                {"key": "treatment", "weight": 1},
            ],
            "metrics": [{"metric": "adoption", "role": "primary"}],
        },
    )
    assert status == 201, body
    # Success needs the primary metric only (the seed's "two important
    # improvements" would need weeks of simulated mentees).
    Experiment.objects.filter(key=f"{key}-exp").update(decision_policy={"important_needed": 0})
    assert pm.post(f"/api/v1/experiments/{key}-exp/start/")[0] == 200

    stages = PLANS[plan_name]
    status, created = pm.post(
        "/api/v1/rollouts/",
        {
            "key": key,
            "name": f"Journey ({plan_name})",
            "feature": "recommendations",
            "experiment": f"{key}-exp",
            "stages": stages,
            "sla": SLA,
            "rollback": ROLLBACK,
        },
    )
    assert status == 201, created
    assert created["canary_percent"] == 0
    names = [s["name"] for s in stages]

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    with celery_worker(
        redis_url=redis_url, data_dir=tmp_path, beat=True, extra_env={"CACHE_KEY_PREFIX": prefix}
    ):
        # Staff only: nobody else gets the new version.
        assert mentees_visit(front_end, canary_label, range(0, 40), adopt=False)["canary"] == 0
        approve_next(pm, executive_api, key, names[1])

        # Canary: a share of the mentees gets v2; the beat judges the stage record.
        served = mentees_visit(front_end, canary_label, range(1000, 1500), adopt=False)
        assert served["canary"] > 0 and served["stable"] > served["canary"]
        wait_until_gate_ready(pm, key)
        approve_next(pm, executive_api, key, names[2])

        # Experiment: the assignment splits; adoptions feed the analysis.
        served = mentees_visit(front_end, canary_label, range(2000, 2600))
        assert served["canary"] > 200 and served["stable"] > 200
        assert wait_for(
            lambda: (
                Rollout.objects.get(key=key)
                .verdicts.filter(report__stage_record__versions__canary__requests__gt=250)
                .exists()
            ),
            timeout=40,
        )
        status, analysis = pm.post(f"/api/v1/experiments/{key}-exp/analysis/")
        assert status == 201, analysis
        assert analysis["decision"]["verdict"] == "success", analysis["decision"]
        wait_until_gate_ready(pm, key)
        approve_next(pm, executive_api, key, names[3])

        # Full: every fresh unit gets the new version.
        status, detail = front_end.get(f"/api/v1/rollouts/{key}/")
        assert (detail["stage"], detail["role"], detail["canary_percent"]) == (
            names[3],
            "full",
            100,
        )
        assert mentees_visit(front_end, canary_label, range(10_000, 11_000), adopt=False) == {
            "canary": 1000,
            "stable": 0,
        }
        if stages[-1].get("min_duration_hours"):
            status, done = pm.post(f"/api/v1/rollouts/{key}/complete/", {"comment": "shipped"})
            assert status == 200, done
            assert done["state"] == "completed"
        else:
            assert wait_for(
                lambda: Rollout.objects.get(key=key).state == "completed", timeout=40
            ), "the platform did not complete the rollout"
        time.sleep(1.2)  # the routing configuration's in-process copy expires
        assert mentees_visit(front_end, canary_label, range(20_000, 21_000), adopt=False) == {
            "canary": 1000,
            "stable": 0,
        }
    _, audit = pm.get(f"/api/v1/rollouts/{key}/audit/")
    actions = [entry["action"] for entry in audit]
    assert actions.count("approved") == 3
    assert "completed" in actions and "rolled_back" not in actions
