import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from train.pipeline import fixed_rounds_files
from utils.data import Dataset, default_spec, load_dataset
from utils.form import Form
from utils.spec import DatasetSpec

ROOT = Path(__file__).resolve().parents[1]
# The first row of adult.data as a validated form (what Form.features gives for it).
ADULT_RECORD: dict[str, Any] = {
    "age": 39.0,
    "workclass": "State-gov",
    "fnlwgt": 77516.0,
    "education": "Bachelors",
    "education_num": 13.0,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "gender": "Male",
    "capital_gain": 2174.0,
    "capital_loss": 0.0,
    "hours_per_week": 40.0,
    "native_country": "United-States",
}
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")


def require_broker() -> None:
    """Fail at once, saying what to do, when the session's broker is not there."""
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as error:
        pytest.fail(f"no Kafka broker at {BOOTSTRAP} ({error}): run `make kafka-up` or `make test`")


@pytest.fixture(scope="session")
def adult() -> Dataset:
    """The default spec's data: adult.data to train on, the holdout, the streamed rows."""
    return load_dataset(default_spec())


@pytest.fixture(scope="session")
def adult_form(adult) -> Form:
    return Form(adult.spec)


def model_files(spec: DatasetSpec, training, holdout, rounds: int = 20) -> dict[str, bytes]:
    """A real model version of `spec` as the store holds it, trained on `training` (a frame)."""
    return fixed_rounds_files(spec, training, holdout, rounds)


@pytest.fixture(scope="session")
def small_model_files(adult) -> dict[str, bytes]:
    """A real but tiny Adult model version (20 trees on 3,000 rows) as the store holds it."""
    return model_files(adult.spec, adult.training.head(3000), adult.holdout)


def run_server_script(script: str, command: str, env: dict[str, str], timeout_s: float) -> None:
    """`bash scripts/<script> <command>` (kafka.sh, registry.sh; the command and its arguments
    separated by spaces), which must succeed."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / script), *command.split()],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class PrivateBroker:
    """A second local broker, started with scripts/kafka.sh on its own ports and state folder, for
    tests that stop the broker or need its SASL listener."""

    def __init__(self, state_dir: Path, base_port: int, secure: bool = False):
        self.env = {
            **os.environ,
            "KAFKA_STATE_DIR": str(state_dir),
            "KAFKA_PORT": str(base_port),
            "KAFKA_CONTROLLER_PORT": str(base_port + 1),
            "KAFKA_SASL_PORT": str(base_port + 2),
        }
        self.bootstrap = f"localhost:{base_port}"
        self.sasl_bootstrap = f"localhost:{base_port + 2}"
        if secure:  # TLS listeners and ACLs: one user per role, no unauthenticated listener
            self.env |= {
                "KAFKA_SSL_PORT": str(base_port + 3),
                "KAFKA_SASL_SSL_PORT": str(base_port + 4),
                "KAFKA_ACLS": "1",
            }
        self.ssl_bootstrap = f"localhost:{base_port + 3}"
        self.sasl_ssl_bootstrap = f"localhost:{base_port + 4}"
        self.ca_file = state_dir / "tls" / "ca.pem"

    def _script(self, command: str) -> None:
        run_server_script("kafka.sh", command, self.env, timeout_s=180)

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


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory):
    """A broker with TLS listeners (a CA and certificate made for the test) and ACLs on."""
    broker = PrivateBroker(
        tmp_path_factory.mktemp("secure-broker"),
        base_port=int(os.environ.get("SECURE_BROKER_PORT", "29195")),
        secure=True,
    )
    broker.start()
    yield broker
    broker.stop()
