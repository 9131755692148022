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

# The web server and a Celery worker (with embedded beat), each in a process
# group of its own so that stopping one takes its children with it. The worker
# is restarted when it dies, after a back-off that grows while it keeps dying
# young; the web server is never stopped because of it. If the web server
# dies, everything stops. Ctrl-C (or TERM) stops both: TERM first, KILL for
# whatever of their process groups is still there after STOP_GRACE_SECONDS.
PORT="${PORT:-8000}"
STOP_GRACE_SECONDS="${STOP_GRACE_SECONDS:-10}"
WORKER_BACKOFF_MAX_SECONDS=30
WORKER_HEALTHY_AFTER_SECONDS=60
web_pid=""
worker_pid=""
worker_started=0
backoff=1

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') run.sh: $*"; }

start_worker() {
  setsid "$BIN/celery" -A config worker -B --loglevel INFO --concurrency 2 \
    --scheduler django_celery_beat.schedulers:DatabaseScheduler &
  worker_pid=$!
  worker_started=$SECONDS
}

start_web() {
  setsid "$BIN/python" manage.py runserver "127.0.0.1:$PORT" --noreload &
  web_pid=$!
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop() {
  trap - INT TERM EXIT
  log "stopping…"
  local pid
  for pid in $web_pid $worker_pid; do
    # The main processes shut their own children down (the worker its pool and beat).
    kill -TERM "$pid" 2>/dev/null || true
  done
  local deadline=$((SECONDS + STOP_GRACE_SECONDS))
  while { alive "$web_pid" || alive "$worker_pid"; } && [ $SECONDS -lt $deadline ]; do
    sleep 0.2
  done
  for pid in $web_pid $worker_pid; do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

start_worker
start_web
log "serving on http://127.0.0.1:$PORT/  (Ctrl-C stops the web server, the worker and beat)"
while true; do
  wait -n 2>/dev/null || true
  if ! alive "$web_pid"; then
    wait "$web_pid" 2>/dev/null && code=0 || code=$?
    log "the web server exited with status $code: stopping everything"
    exit 1
  fi
  if ! alive "$worker_pid"; then
    wait "$worker_pid" 2>/dev/null && code=0 || code=$?
    ran=$((SECONDS - worker_started))
    # A worker that ran for a while died of something passing: restart at once
    # (after 1 s); one that keeps dying young waits longer each time.
    if [ "$ran" -ge "$WORKER_HEALTHY_AFTER_SECONDS" ]; then
      backoff=1
    fi
    # Its pool processes and embedded beat may outlive a killed main process.
    kill -KILL -- "-$worker_pid" 2>/dev/null || true
    log "the worker exited with status $code after ${ran}s: restarting it in ${backoff}s"
    sleep "$backoff" &
    wait $! 2>/dev/null || true
    backoff=$((backoff * 2 > WORKER_BACKOFF_MAX_SECONDS ? WORKER_BACKOFF_MAX_SECONDS : backoff * 2))
    start_worker
    log "worker restarted (pid $worker_pid)"
  fi
done
