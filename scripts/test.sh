#!/usr/bin/env bash
# `make test`: start the local broker (unless KAFKA_BOOTSTRAP_SERVERS names a reachable one), run
# `make lint` (ruff check, ruff format --check, mypy) and the whole test suite (unit, contract,
# integration), then stop the broker if this script started it.
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
.venv/bin/python -m pytest tests --durations=40 "$@"
