#!/usr/bin/env bash
# `make test`: start the local broker (unless KAFKA_BOOTSTRAP_SERVERS names a reachable one) and
# the local schema registry (unless SCHEMA_REGISTRY_URL names one), run `make lint` (ruff check,
# ruff format --check, mypy) and the whole test suite (unit, contract, integration), then stop
# what this script started.
#
# The slowest groups (see below) run in pytest processes of their own beside the rest; all must pass.
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

# Two groups run beside the main run, one after the other, each in its own pytest process with its
# own temporary folders: the slow one (the MLflow tracking-server tests, mostly waiting out outages
# they cause, and the Spark tests), then the failover one (a private three-node cluster under load,
# whose nodes are killed one after the other). Not all three at once: the cluster under load and
# the Spark and tracking servers together starve two cores. Their output follows the main run's.
SLOW_GROUP=(tests/integration/test_tracking_server.py tests/integration/test_spark.py)
FAILOVER_GROUP=(tests/integration/test_cluster_failover.py)
mkdir -p logs
run_beside() {
  local log="$1"
  shift
  local tmp
  tmp=$(mktemp -d /tmp/pipeline-tests-beside-XXXXXX)
  local status=0
  .venv/bin/python -m pytest "$@" -p no:cacheprovider --basetemp="$tmp" --durations=10 >"$log" 2>&1 || status=$?
  rm -rf "$tmp"
  return $status
}
slow_log=logs/test-slow-group.log failover_log=logs/test-failover-group.log
status_dir=$(mktemp -d /tmp/pipeline-tests-status-XXXXXX)
(
  status=0
  run_beside "$slow_log" "${SLOW_GROUP[@]}" "$@" || status=$?
  echo "$status" >"$status_dir/slow"
  status=0
  run_beside "$failover_log" "${FAILOVER_GROUP[@]}" "$@" || status=$?
  echo "$status" >"$status_dir/failover"
) &
beside_pid=$!

main_status=0 main_log=logs/test-main.log
.venv/bin/python -m pytest tests "${SLOW_GROUP[@]/#/--ignore=}" "${FAILOVER_GROUP[@]/#/--ignore=}" --durations=40 "$@" 2>&1 \
  | tee "$main_log" || main_status=$?

wait "$beside_pid" || true
slow_status=$(cat "$status_dir/slow" 2>/dev/null || echo "not run")
failover_status=$(cat "$status_dir/failover" 2>/dev/null || echo "not run")
rm -rf "$status_dir"
echo "=== ${SLOW_GROUP[*]} (run beside the rest; full log: $slow_log) ==="
tail -n 40 "$slow_log"
echo "=== ${FAILOVER_GROUP[*]} (run beside the rest; full log: $failover_log) ==="
tail -n 40 "$failover_log"
if [[ $main_status != 0 || $slow_status != 0 || $failover_status != 0 ]]; then
  # Each failing test's first line last, where the tail of a CI log shows it.
  echo "=== failed tests ==="
  grep -h -E "^(FAILED|ERROR) " "$main_log" "$slow_log" "$failover_log" 2>/dev/null | cut -c1-500 || true
  echo "FAILED: main run exit $main_status, slow group exit $slow_status, failover group exit $failover_status" >&2
  exit 1
fi
