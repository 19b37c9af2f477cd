#!/usr/bin/env bash
# `make demo`: the whole pipeline on this machine, then a summary. Starts the local broker unless
# KAFKA_BOOTSTRAP_SERVERS names a reachable one, trains the first model if none exists, runs the
# predictor and trainer in the background (logs in logs/), streams users with the sample app long
# enough for several retrains and hot swaps, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/broker_env.sh
PY=.venv/bin/python

# Smaller searches than the defaults keep the demo within a few minutes on 2 cores;
# `python initialize.py` alone uses the default of 50 trials.
DEMO_INIT_EVALS="${DEMO_INIT_EVALS:-15}"
DEMO_RETRAIN_EVALS="${DEMO_RETRAIN_EVALS:-3}"
DEMO_USERS="${DEMO_USERS:-1200}"
DEMO_RATE="${DEMO_RATE:-10}"

mkdir -p logs
pids=()
started_broker=0
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $started_broker == 1 ]]; then bash scripts/kafka.sh stop; fi
}
trap cleanup EXIT

if broker_reachable; then
  echo "demo: using the broker at $KAFKA_BOOTSTRAP_SERVERS"
else
  bash scripts/kafka.sh start
  started_broker=1
fi

if [[ -z "$($PY -c 'from utils.cli import settings_from; from utils.model_store import ModelStore; from utils.settings import CommonSettings; print(ModelStore(settings_from(CommonSettings).model_store).current_version() or "")')" ]]; then
  echo "demo: no model yet, training the first version ($DEMO_INIT_EVALS trials; log: logs/initialize.log)"
  $PY initialize.py --max-evals "$DEMO_INIT_EVALS" 2>&1 | tee logs/initialize.log | grep -E "initial model ready|ERROR" || true
fi

$PY predictor.py >logs/predictor.log 2>&1 & pids+=($!)
$PY trainer.py --max-evals "$DEMO_RETRAIN_EVALS" >logs/trainer.log 2>&1 & pids+=($!)
for service in predictor trainer; do
  for _ in $(seq 1 120); do
    grep -q "$service ready" "logs/$service.log" && break
    sleep 1
  done
  grep -q "$service ready" "logs/$service.log" || { echo "demo: $service did not start, see logs/$service.log"; exit 1; }
done
echo "demo: predictor and trainer running (logs/predictor.log, logs/trainer.log)"

echo "demo: streaming $DEMO_USERS users at $DEMO_RATE/s"
status=0
$PY sample_app.py --n "$DEMO_USERS" --rate "$DEMO_RATE" --timeout 120 --summary-json logs/demo_summary.json \
  >logs/sample_app.log 2>&1 || status=$?
# Every 50th answer, to show predictions flowing and model versions changing.
awk 'NR % 50 == 1' logs/sample_app.log | grep -E "offer|error" || true

echo
echo "=== demo summary ==="
cat logs/demo_summary.json
echo "retrains completed: $(grep -c 'training completed announced' logs/trainer.log) (including the start-up announcement)"
echo "model swaps:        $(grep -c 'model swapped' logs/predictor.log)"
$PY - <<'PYEOF'
from utils.cli import settings_from
from utils.model_store import ModelStore
from utils.settings import CommonSettings
store = ModelStore(settings_from(CommonSettings).model_store)
for version in store.versions():
    meta = store.metadata(version)
    print(f"model v{version}: trigger={meta.trigger} spec={meta.spec_name} rows={meta.trained_rows} "
          f"holdout_auc={meta.metrics['holdout_auc']:.4f} promoted={meta.promoted}")
print(f"serving: v{store.current_version()}")
PYEOF
echo "MLflow: make mlflow-ui  (or: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db)"
exit $status
