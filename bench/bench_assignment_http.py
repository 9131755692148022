"""POST /api/v1/assignments/ under gunicorn (2 sync workers) driven by wrk,
next to a bare Django JSON view served the same way, in one run.

    .venv/bin/python bench/bench_assignment_http.py [--seconds 10] [--units 10000]

Needs PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379 and wrk. Units
are drawn at random from a pool of --units ids, so after the first pass most
calls are repeat visitors (no exposure write) as in production traffic.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import bench_env, fresh_database, gunicorn, manage, wrk

SETUP = """
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from tests.factories import make_experiment
user = User.objects.create_user("bench-integration")
user.groups.add(Group.objects.get(name="Integrations"))
make_experiment("bench-exp", weights=(1, 1), traffic_percent=100)
print(Token.objects.create(user=user).key)
"""

COUNT = """
from experiments.models import Exposure
print(Exposure.objects.count())
"""

ASSIGN_LUA = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token %(token)s"
request = function()
  local unit = "mentee-" .. math.random(1, %(units)d)
  local body = '{"experiment": "bench-exp", "unit_id": "' .. unit .. '"}'
  return wrk.format(nil, "/api/v1/assignments/", nil, body)
end
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--units", type=int, default=10_000)
    args = parser.parse_args()
    database = "ion_bench_assign"
    fresh_database(database)
    env = bench_env(database)
    manage(env, "migrate", "--noinput")
    token = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]
    script = ASSIGN_LUA % {"token": token, "units": args.units}
    with gunicorn(env) as base:
        wrk(f"{base}/bench/bare/", seconds=2)  # warm up both workers
        # First visits: every unit of the pool is new, each call writes its exposure.
        first = wrk(f"{base}/api/v1/assignments/", script=script, seconds=args.seconds)
        # Until nearly every unit has been seen by both workers.
        wrk(f"{base}/api/v1/assignments/", script=script, seconds=args.seconds)
        bare = wrk(f"{base}/bench/bare/", seconds=args.seconds)
        steady = wrk(f"{base}/api/v1/assignments/", script=script, seconds=args.seconds)
    exposures = manage(env, "shell", "-c", COUNT).strip().splitlines()[-1]
    result = {
        "bare_json_view": bare,
        "assignments_returning_units": steady,
        "ratio": round(steady["rps"] / bare["rps"], 3),
        "assignments_first_visits": first,
        "exposures_stored": int(exposures),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
