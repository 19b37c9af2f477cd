#!/usr/bin/env bash
# `make test`: start the local broker (unless KAFKA_BOOTSTRAP_SERVERS names a reachable one), run
# `make lint` (ruff check, ruff format --check, mypy) and the whole test suite (unit, contract,
# integration), then stop the broker if this script started it.
#
# The slowest group, the MLflow tracking-server tests (mostly waiting out outages they cause) and
# the Spark tests (a JVM start-up and a standalone cluster), runs in a second pytest process beside
# the rest, with its own temporary folders; its output is printed after the main run's. Both must
# pass.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/broker_env.sh

started_broker=0
if ! broker_reachable; then
  bash scripts/kafka.sh start
  started_broker=1
fi
stop_broker() { if [[ $started_broker == 1 ]]; then bash scripts/kafka.sh stop; fi; }
trap stop_broker EXIT

make --no-print-directory lint

SLOW_GROUP=(tests/integration/test_tracking_server.py tests/integration/test_spark.py)
mkdir -p logs
slow_log=logs/test-slow-group.log
slow_tmp=$(mktemp -d /tmp/pipeline-tests-slow-XXXXXX)
.venv/bin/python -m pytest "${SLOW_GROUP[@]}" -p no:cacheprovider --basetemp="$slow_tmp" --durations=10 "$@" \
  >"$slow_log" 2>&1 &
slow_pid=$!

main_status=0
.venv/bin/python -m pytest tests "${SLOW_GROUP[@]/#/--ignore=}" --durations=40 "$@" || main_status=$?

slow_status=0
wait "$slow_pid" || slow_status=$?
echo "=== ${SLOW_GROUP[*]} (run beside the rest; full log: $slow_log) ==="
tail -n 40 "$slow_log"
rm -rf "$slow_tmp"
if [[ $main_status != 0 || $slow_status != 0 ]]; then
  echo "FAILED: main run exit $main_status, slow group exit $slow_status" >&2
  exit 1
fi
