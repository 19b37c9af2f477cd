# Entry points. `make demo` and `make test` work on a fresh clone: they install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help docs venv venv-spark kafka-up kafka-down kafka-status registry-up registry-down registry-status initialize demo test test-cluster test-unit lint rollback benchmark benchmark-quick benchmark-retrain benchmark-cluster mlflow-ui clean

help:
	@echo "make demo        set up everything and run the whole pipeline (about 5 minutes)"
	@echo "make test        install, start Kafka, run unit + integration tests, stop Kafka"
	@echo "make test-cluster  the failover cases alone (a three-node cluster under load; make test runs them too)"
	@echo "make test-unit   fast tests, no services"
	@echo "make kafka-up    start the local Kafka broker (make kafka-down stops it)"
	@echo "make registry-up start the local schema registry, Apicurio (make registry-down stops it)"
	@echo "make initialize  train the first model version (python initialize.py)"
	@echo "make rollback VERSION=N  serve model version N again (predictors swap at once)"
	@echo "make mlflow-ui   browse runs and registered models at http://127.0.0.1:5000"
	@echo "make benchmark   end-to-end throughput/latency benchmark (benchmark-quick: 2 minutes)"
	@echo "make lint        ruff check, ruff format --check, mypy (make test runs it first)"
	@echo "make docs        rewrite the configuration tables of docs/configuration.md from utils/settings.py"
	@echo "make venv-spark  add pyspark, for --spark-master (make test installs it)"
	@echo "make benchmark-retrain  one retrain against the observations log size, in-process and on Spark"
	@echo "make benchmark-cluster  the predictor and the echo on a three-node cluster beside one node"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# Optional: Spark for the trainer's trials (--spark-master). A large wheel, so `make demo` skips it.
venv-spark: $(VENV)/.installed-spark

$(VENV)/.installed-spark: requirements-spark.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-spark.txt
	touch $@

kafka-up:
	bash scripts/kafka.sh start

kafka-down:
	bash scripts/kafka.sh stop

kafka-status:
	bash scripts/kafka.sh status

registry-up:
	bash scripts/registry.sh start

registry-down:
	bash scripts/registry.sh stop

registry-status:
	bash scripts/registry.sh status

initialize: venv
	$(PY) initialize.py

demo: venv
	bash scripts/demo.sh

test: venv venv-spark
	bash scripts/test.sh

test-cluster: venv
	bash scripts/kafka.sh start
	FAILOVER_EVERY_CASE=1 $(PY) -m pytest tests/integration/test_cluster_failover.py; status=$$?; bash scripts/kafka.sh stop; exit $$status

test-unit: venv
	$(PY) -m pytest tests/unit -q

docs: venv
	$(PY) -c "from utils.cli import write_configuration_docs; write_configuration_docs()"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

rollback: venv
	@test -n "$(VERSION)" || { echo "usage: make rollback VERSION=N"; exit 2; }
	$(PY) rollback.py $(VERSION)

benchmark: venv
	$(PY) -m benchmarks.pipeline

benchmark-quick: venv
	$(PY) -m benchmarks.pipeline --quick

benchmark-cluster: venv
	$(PY) -m benchmarks.cluster

benchmark-retrain: venv venv-spark
	$(PY) -m benchmarks.retrain

mlflow-ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf logs .pytest_cache .ruff_cache
