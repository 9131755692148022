#!/usr/bin/env bash
# Start the whole platform in the foreground: web server on 127.0.0.1:8000 and a
# Celery worker with embedded beat. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DEBUG="${DEBUG:-1}"

# The embedded default's file cache belongs to this data folder's database:
# start it empty, so that a replaced db.sqlite3 never meets configuration
# cached from the old one (Redis, when set, is left alone).
if [ -z "${REDIS_URL:-}" ]; then
  rm -rf "${DATA_DIR:-data}/cache"
fi
"$BIN/python" manage.py migrate --noinput
"$BIN/python" manage.py create_demo_accounts
# First start: the demo catalogue of the recommendation engine, then the simulated
# Phase 4 rollout, so the dashboards open on something real.
if ! "$BIN/python" manage.py shell -c "
import sys
from rollout.models import Rollout
sys.exit(0 if Rollout.objects.filter(key='phase4-recommendations').exists() else 1)
" >/dev/null 2>&1; then
  "$BIN/python" manage.py seed_recommendations
  "$BIN/python" manage.py simulate_phase4 --if-empty
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping…"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/celery" -A config worker -B --loglevel INFO --concurrency 2 \
  --scheduler django_celery_beat.schedulers:DatabaseScheduler &
pids+=($!)
"$BIN/python" manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
echo "Serving on http://127.0.0.1:8000/  (Ctrl-C stops the web server, the worker and beat)"
wait -n "${pids[@]}"
