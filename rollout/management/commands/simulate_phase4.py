"""python manage.py simulate_phase4 — a living Phase 4 rollout for the dashboards."""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from rollout.models import Rollout
from rollout.simulation import ROLLOUT_KEY, SimulationConfig, simulate_phase4


class Command(BaseCommand):
    help = (
        "Simulate the Phase 4 rollout of the recommendation engine v2 through the real "
        "services: routing, assignment, event ingestion, request metrics, analysis."
    )

    def add_arguments(self, parser):
        defaults = SimulationConfig()
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the demo rollout already exists",
        )
        parser.add_argument("--days", type=int, default=defaults.days)
        parser.add_argument("--daily-users", type=int, default=defaults.daily_users)
        parser.add_argument(
            "--adoption-lift",
            type=float,
            default=defaults.adoption_lift,
            help="true effect of v2 on adoption (absolute, e.g. 0.12 = +12 pp)",
        )
        parser.add_argument("--completion-lift", type=float, default=defaults.completion_lift)
        parser.add_argument(
            "--duration-lift",
            type=float,
            default=defaults.duration_lift,
            help="relative effect on session duration (0.4 = +40 %%)",
        )
        parser.add_argument("--satisfaction-lift", type=float, default=defaults.satisfaction_lift)
        parser.add_argument(
            "--canary-fault",
            type=float,
            default=0.0,
            help="error rate of the canary in the last 30 minutes, e.g. 0.03",
        )
        parser.add_argument("--requests-per-minute", type=int, default=defaults.requests_per_minute)
        parser.add_argument("--seed", type=int, default=defaults.seed)

    def handle(self, *args, **o):
        if o["if_empty"] and Rollout.objects.filter(key=ROLLOUT_KEY).exists():
            self.stdout.write("The Phase 4 demo already exists; nothing to do.")
            return
        if Rollout.objects.filter(key=ROLLOUT_KEY).exists():
            self.stderr.write(
                f"Rollout '{ROLLOUT_KEY}' exists already; use a fresh database to simulate again."
            )
            return
        call_command("create_demo_accounts", force=True, stdout=open("/dev/null", "w"))  # noqa: SIM115
        config = SimulationConfig(
            days=o["days"],
            daily_users=o["daily_users"],
            adoption_lift=o["adoption_lift"],
            completion_lift=o["completion_lift"],
            duration_lift=o["duration_lift"],
            satisfaction_lift=o["satisfaction_lift"],
            canary_fault=o["canary_fault"],
            requests_per_minute=o["requests_per_minute"],
            seed=o["seed"],
        )
        with tqdm(total=config.days, desc="simulated days", unit=" day", disable=None) as bar:
            result = simulate_phase4(config, progress=bar.update)
        self.stdout.write(
            f"Simulated {config.days} days: {result.events:,} events, {result.requests:,} "
            f"requests, {result.snapshots} snapshots.\n"
            f"Experiment verdict: {result.verdict}; rollout health: {result.health}; "
            f"rollout state: {result.rollout_state}."
        )
        if result.pending_transition:
            self.stdout.write(
                f"Pending approval: transition {result.pending_transition} (ab → full) waits "
                "for an executive at /rollouts/phase4-recommendations/."
            )
        for note in result.notes:
            self.stdout.write(note)
