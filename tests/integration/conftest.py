import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.integration.processes import ROOT, ServiceProcess, run_script

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def broker_is_up():
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as error:
        pytest.fail(f"no Kafka broker at {BOOTSTRAP} ({error}): run `make kafka-up` or `make test`")


def base_env(root: Path, prefix: str, bootstrap: str = BOOTSTRAP) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PIPELINE_TOPIC_PREFIX": prefix,
        "MODEL_STORE_DIR": str(root / "models"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def initialized(tmp_path_factory) -> Path:
    """A folder with a model store and MLflow database holding the first version (a short search)."""
    root = tmp_path_factory.mktemp("initialized")
    result = run_script("initialize.py", ["--max-evals", "2", "--threads", "2"], base_env(root, "unused-"))
    assert result.returncode == 0, result.stderr[-3000:]
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

    def topic(self, name: str) -> str:
        return self.prefix + name

    def start(self, script: str, *args: str, name: str | None = None) -> ServiceProcess:
        log = self.root / f"{name or script.removesuffix('.py')}-{len(self.services)}.log"
        group = ["--group-id", f"{self.prefix}{script.removesuffix('.py')}"] if script != "sample_app.py" else []
        service = ServiceProcess(script, [*group, *args], self.env, log)
        self.services.append(service)
        return service

    def start_predictor(self, *args: str) -> ServiceProcess:
        service = self.start("predictor.py", *args)
        service.wait_for_log("predictor ready")
        return service

    def start_trainer(self, *args: str) -> ServiceProcess:
        service = self.start("trainer.py", "--max-evals", "2", *args)
        service.wait_for_log("trainer ready")
        return service

    def sample_app(self, *args: str, timeout_s: float = 300) -> tuple[dict, str]:
        summary_path = self.root / f"summary-{uuid.uuid4().hex[:6]}.json"
        result = run_script(
            "sample_app.py", ["--summary-json", str(summary_path), "--quiet", *args], self.env, timeout_s=timeout_s
        )
        assert summary_path.exists(), result.stdout[-2000:] + result.stderr[-3000:]
        return json.loads(summary_path.read_text()), result.stdout

    def start_sample_app(self, *args: str) -> tuple[ServiceProcess, Path]:
        """The sample app in the background; its summary lands in the returned path when it exits."""
        summary_path = self.root / f"summary-{uuid.uuid4().hex[:6]}.json"
        service = self.start("sample_app.py", "--summary-json", str(summary_path), "--quiet", *args)
        return service, summary_path

    def read_topic(self, name: str, timeout_s: float = 5) -> list[dict]:
        """Every record of one of this test's topics, decoded."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=int(timeout_s * 1000),
        )
        topic = self.topic(name)
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            return [json.loads(record.value) for record in consumer]
        finally:
            consumer.close()

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


class PrivateBroker:
    """A second local broker, started with scripts/kafka.sh on its own ports and state folder, for
    tests that stop the broker or need its SASL listener."""

    def __init__(self, state_dir: Path, base_port: int):
        self.env = {
            **os.environ,
            "KAFKA_STATE_DIR": str(state_dir),
            "KAFKA_PORT": str(base_port),
            "KAFKA_CONTROLLER_PORT": str(base_port + 1),
            "KAFKA_SASL_PORT": str(base_port + 2),
        }
        self.bootstrap = f"localhost:{base_port}"
        self.sasl_bootstrap = f"localhost:{base_port + 2}"

    def _script(self, command: str) -> None:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "kafka.sh"), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")


# Below Linux's ephemeral range (32768-60999): a port in it can be taken at any moment by the local
# end of some outgoing connection, and the broker then fails to bind.
@pytest.fixture(scope="session")
def private_broker(tmp_path_factory):
    broker = PrivateBroker(
        tmp_path_factory.mktemp("private-broker"), base_port=int(os.environ.get("PRIVATE_BROKER_PORT", "29192"))
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def private_pipeline(tmp_path, initialized, private_broker):
    world = Pipeline(tmp_path, initialized, private_broker.bootstrap)
    yield world
    world.stop_all()
