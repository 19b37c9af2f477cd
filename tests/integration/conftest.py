import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.conftest import BOOTSTRAP, require_broker
from tests.integration.metrics import free_port
from tests.integration.processes import ROOT, ServiceProcess, run_script


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def broker_is_up():
    require_broker()


def base_env(root: Path, prefix: str, bootstrap: str = BOOTSTRAP) -> dict[str, str]:
    """A service's environment: no schema registry unless the test names one (SCHEMA_REGISTRY_URL)."""
    return {
        **{name: value for name, value in os.environ.items() if name != "SCHEMA_REGISTRY_URL"},
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PIPELINE_TOPIC_PREFIX": prefix,
        "MODEL_STORE_DIR": str(root / "models"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # The tests' registry shares two cores with up to five brokers: a call may take longer than
        # the 2 s a production predictor allows before answering schema_unavailable.
        "SCHEMA_REGISTRY_TIMEOUT_S": "30",
    }


@pytest.fixture(scope="session")
def initialized(tmp_path_factory) -> Path:
    """A folder with a model store and MLflow database holding the first version (a short search),
    and its compiled form, built once here so that every test's predictors load it from the cache
    instead of each compiling it again beside the test."""
    root = tmp_path_factory.mktemp("initialized")
    env = base_env(root, "unused-")
    result = run_script("initialize.py", ["--max-evals", "2", "--threads", "2"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    built = subprocess.run(
        [sys.executable, "-m", "utils.compiler_process", "--model-store", str(root / "models"), "--version", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return root


class Pipeline:
    """One test's private world: its own topics, consumer groups, model store and MLflow database."""

    def __init__(self, root: Path, initialized: Path, bootstrap: str = BOOTSTRAP):
        self.root = root
        self.bootstrap = bootstrap
        self.prefix = f"it-{uuid.uuid4().hex[:8]}-"
        shutil.copytree(initialized / "models", root / "models")
        shutil.copy(initialized / "mlflow.db", root / "mlflow.db")
        self.env = base_env(root, self.prefix, bootstrap)
        self.services: list[ServiceProcess] = []
        self.script_env: dict[str, dict[str, str]] = {}

    def env_for(self, script: str) -> dict[str, str]:
        """The environment of one script: the test's, plus that script's own (e.g. its credentials)."""
        return {**self.env, **self.script_env.get(script, {})}

    def topic(self, name: str) -> str:
        return self.prefix + name

    def start(self, script: str, *args: str, name: str | None = None) -> ServiceProcess:
        """A service in the background, with its own consumer group and, for the predictor and the
        trainer, a /metrics port of its own (the one given, or a free one instead of none or 0)."""
        log = self.root / f"{name or script.removesuffix('.py')}-{len(self.services)}.log"
        group = ["--group-id", f"{self.prefix}{script.removesuffix('.py')}"] if script != "sample_app.py" else []
        arguments, port = list(args), None
        if script in ("predictor.py", "trainer.py"):
            if "--metrics-port" in arguments:
                at = arguments.index("--metrics-port")
                port = int(arguments.pop(at + 1))
                arguments.pop(at)
            port = port or free_port()
            arguments += ["--metrics-port", str(port)]
        service = ServiceProcess(script, [*group, *arguments], self.env_for(script), log, port)
        self.services.append(service)
        return service

    def start_predictor(self, *args: str) -> ServiceProcess:
        service = self.start("predictor.py", *args)
        service.wait_until_ready()
        return service

    def start_trainer(self, *args: str) -> ServiceProcess:
        service = self.start("trainer.py", "--max-evals", "2", *args)
        service.wait_until_ready()
        return service

    def sample_app(self, *args: str, timeout_s: float = 300) -> tuple[dict, str]:
        summary_path = self.root / f"summary-{uuid.uuid4().hex[:6]}.json"
        result = run_script(
            "sample_app.py",
            ["--summary-json", str(summary_path), "--quiet", *args],
            self.env_for("sample_app.py"),
            timeout_s=timeout_s,
        )
        assert summary_path.exists(), result.stdout[-2000:] + result.stderr[-3000:]
        return json.loads(summary_path.read_text()), result.stdout

    def start_sample_app(self, *args: str) -> tuple[ServiceProcess, Path]:
        """The sample app in the background; its summary lands in the returned path when it exits."""
        summary_path = self.root / f"summary-{uuid.uuid4().hex[:6]}.json"
        service = self.start("sample_app.py", "--summary-json", str(summary_path), "--quiet", *args)
        return service, summary_path

    def read_topic(self, name: str, timeout_s: float = 5, read_committed: bool = False) -> list[dict]:
        """Every record of one of this test's topics, decoded (with `read_committed`, as a consumer
        that skips aborted transactions sees them)."""
        return [json.loads(value) for value in self.read_values(name, timeout_s, read_committed)]

    def read_values(self, name: str, timeout_s: float = 5, read_committed: bool = False) -> list[bytes]:
        """The value of every record of one of this test's topics, as it is."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=int(timeout_s * 1000),
            isolation_level="read_committed" if read_committed else "read_uncommitted",
        )
        topic = self.topic(name)
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            return [record.value for record in consumer]
        finally:
            consumer.close()

    def events(self, topic: str = "retrain_topic") -> list[dict]:
        """Every event on one of this test's event topics (the retrain topic by default, which is
        also the model-events topic unless a test names one), oldest first."""
        return [record for record in self.read_topic(topic, timeout_s=1, read_committed=True) if "event" in record]

    def wait_for_event(
        self,
        event: str,
        count: int = 1,
        timeout_s: float = 120,
        topic: str = "retrain_topic",
        service: ServiceProcess | None = None,
        **fields: object,
    ) -> list[dict]:
        """The events of this kind (with these field values), once there are at least `count`; with
        `service` (the process that is to send them), fail early if it exits."""
        deadline = time.monotonic() + timeout_s
        found: list[dict] = []
        while time.monotonic() < deadline:
            found = [
                record
                for record in self.events(topic)
                if record["event"] == event and all(record.get(name) == value for name, value in fields.items())
            ]
            if len(found) >= count:
                return found
            if service is not None and service.process.poll() is not None:
                raise AssertionError(
                    f"{service.name} exited with {service.process.returncode} before {count} {event} {fields or ''}"
                    f" events (found {len(found)}):\n{service.tail()}"
                )
            time.sleep(0.5)
        tail = f":\n{service.tail()}" if service is not None else ""
        raise AssertionError(f"{len(found)} of {count} {event} {fields or ''} events after {timeout_s}s{tail}")

    def wait_for_answers(self, at_least: int, timeout_s: float = 60) -> int:
        """Number of records on this test's predictions topic, once there are at least `at_least`."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        topic = self.topic("predictions")
        deadline = time.monotonic() + timeout_s
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            while time.monotonic() < deadline:
                answered = sum(consumer.end_offsets(partitions).values())
                if answered >= at_least:
                    return answered
                time.sleep(0.05)
        finally:
            consumer.close()
        raise AssertionError(f"fewer than {at_least} answers after {timeout_s}s")

    def stop_all(self) -> None:
        for service in self.services:
            service.stop()


@pytest.fixture
def pipeline(tmp_path, initialized):
    world = Pipeline(tmp_path, initialized)
    yield world
    world.stop_all()


@pytest.fixture
def private_pipeline(tmp_path, initialized, private_broker):
    world = Pipeline(tmp_path, initialized, private_broker.bootstrap)
    yield world
    world.stop_all()
