"""Server time of `POST /api/v1/assignments/` in process, through Django's WSGI
handler and the whole middleware stack, on PostgreSQL and Redis: returning
units (their exposure is already recorded), token authentication, and a
staff session with its CSRF token.

    .venv/bin/python bench/bench_assignment_inprocess.py [--n 5000]

No HTTP server and no load generator: the figure is the per-request cost that
authentication and throttling add to the lean endpoint, not a throughput.
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import bench_env, fresh_database, manage

UNITS = 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a last run")
    parser.add_argument("--profile", choices=["token", "session"], help="profile one instead")
    args = parser.parse_args()
    database = "ion_bench_lean"
    env = bench_env(database)
    if not args.reuse:
        fresh_database(database)
        manage(env, "migrate", "--noinput")
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.handlers.wsgi import WSGIHandler
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from experiments.models import Experiment
    from tests.factories import make_experiment

    integration, _ = User.objects.get_or_create(username="bench-integration")
    integration.groups.add(Group.objects.get(name="Integrations"))
    token = Token.objects.get_or_create(user=integration)[0].key
    pm, _ = User.objects.get_or_create(username="bench-pm", is_staff=True)
    pm.groups.add(Group.objects.get(name="Product managers"))
    if not Experiment.objects.filter(key="bench-exp").exists():
        make_experiment("bench-exp", weights=(1, 1), traffic_percent=100)
    client = Client()
    client.force_login(pm)
    session_cookie = client.cookies["sessionid"].value
    secret = _get_new_csrf_string()

    handler = WSGIHandler()

    def environ(unit: int, headers: dict[str, str]) -> dict:
        body = json.dumps({"experiment": "bench-exp", "unit_id": f"mentee-{unit}"}).encode()
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/assignments/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "127.0.0.1",
            **headers,
        }

    statuses: dict[str, set] = {}

    def run(label: str, headers: dict[str, str]) -> float:
        seen = statuses.setdefault(label, set())

        def start_response(status, response_headers):
            seen.add(status)

        for unit in range(UNITS):  # records every exposure once, warms the caches
            b"".join(handler(environ(unit, headers), start_response))
        best = []
        for _ in range(3):
            started = time.perf_counter()
            for i in range(args.n):
                b"".join(handler(environ(i % UNITS, headers), start_response))
            best.append((time.perf_counter() - started) / args.n * 1000)
        return round(min(best), 4)

    token_headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
    session_headers = {
        "HTTP_COOKIE": f"sessionid={session_cookie}; csrftoken={secret}",
        "HTTP_X_CSRFTOKEN": _mask_cipher_secret(secret),
    }
    if args.profile:
        import cProfile
        import pstats

        headers = session_headers if args.profile == "session" else token_headers
        run("warm", headers)
        profiler = cProfile.Profile()
        profiler.enable()
        run("profiled", headers)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return
    result = {"ms_per_request_token": run("token", token_headers)}
    result["ms_per_request_session"] = run("session", session_headers)
    result["ms_per_request_token_again"] = run("token_again", token_headers)
    result["statuses"] = {label: sorted(seen) for label, seen in statuses.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
