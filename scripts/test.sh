#!/usr/bin/env bash
# `make test`: start the local broker (unless KAFKA_BOOTSTRAP_SERVERS names a reachable one) and
# the local schema registry (unless SCHEMA_REGISTRY_URL names one), run `make lint` (ruff check,
# ruff format --check, mypy) and the whole test suite (unit, contract, integration), then stop
# what this script started.
#
# The slowest group, the MLflow tracking-server tests (mostly waiting out outages they cause) and
# the Spark tests (a JVM start-up and a standalone cluster), runs in a second pytest process beside
# the rest, with its own temporary folders; its output is printed after the main run's. Both must
# pass.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/broker_env.sh

# The tests' schema registry: its own port and state, so a developer's registry on 8081 is left
# alone; tests/integration/test_schema_registry.py finds it by PIPELINE_TEST_REGISTRY_URL (every
# other test runs without a registry, as the pipeline does by default).
test_registry=(env REGISTRY_PORT="${TEST_REGISTRY_PORT:-18081}" REGISTRY_STATE_DIR="${TMPDIR:-/tmp}/pipeline-test-registry")
started_broker=0 started_registry=0
stop_services() {
  if [[ $started_registry == 1 ]]; then "${test_registry[@]}" bash scripts/registry.sh stop; fi
  if [[ $started_broker == 1 ]]; then bash scripts/kafka.sh stop; fi
}
trap stop_services EXIT
if ! broker_reachable; then
  bash scripts/kafka.sh start
  started_broker=1
fi
if [[ -z "${PIPELINE_TEST_REGISTRY_URL:-}" ]]; then
  "${test_registry[@]}" bash scripts/registry.sh reset >/dev/null
  "${test_registry[@]}" bash scripts/registry.sh start
  started_registry=1
  export PIPELINE_TEST_REGISTRY_URL="http://localhost:${TEST_REGISTRY_PORT:-18081}/apis/ccompat/v7"
fi

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
