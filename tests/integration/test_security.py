"""Least privilege on the wire: the pipeline over SASL_SSL with one principal per role and the
broker's ACLs on; each role is denied what it does not need; a client that does not trust the
broker's certificate, or reaches it under a name the certificate does not carry, stops with exit 3."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import Pipeline
from tests.integration.processes import ServiceProcess, run_script
from utils.kafka.clients import CLIENTS, create_consumer, create_producer
from utils.kafka.interface import (
    AuthorizationFailed,
    ConsumerOptions,
    DeliveryFailed,
    KafkaError,
    Partition,
    ProducerOptions,
)
from utils.messages.codec import encode
from utils.messages.events import ModelRolledBack
from utils.settings import KafkaClient, KafkaSettings

PASSWORDS = {"admin": "admin-secret", "app": "app-secret", "predictor": "predictor-secret", "trainer": "trainer-secret"}
ROLE_OF = {"predictor.py": "predictor", "trainer.py": "trainer", "sample_app.py": "app", "setup_acls.py": "admin"}


def credentials(broker, role: str, ca_file: Path | None = None, bootstrap: str | None = None) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap or broker.sasl_ssl_bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": role,
        "KAFKA_SASL_PASSWORD": PASSWORDS[role],
        "KAFKA_SSL_CAFILE": str(ca_file or broker.ca_file),
    }


@pytest.fixture
def secure_pipeline(tmp_path, initialized, secure_broker):
    world = Pipeline(tmp_path, initialized, secure_broker.sasl_ssl_bootstrap)
    world.env["PIPELINE_MODEL_EVENTS_TOPIC"] = "model_events"  # its own topic: the trainer's alone to write
    world.script_env = {script: credentials(secure_broker, role) for script, role in ROLE_OF.items()}
    result = run_script(
        "setup_acls.py",
        ["--predictor-group", world.topic("predictor"), "--trainer-group", world.topic("trainer")],
        world.env_for("setup_acls.py"),
        timeout_s=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    yield world
    world.stop_all()


def role_settings(broker, role: str, client: KafkaClient) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker.sasl_ssl_bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username=role,
        sasl_password=PASSWORDS[role],
        ssl_cafile=str(broker.ca_file),
        client=client,
    )


def test_the_pipeline_runs_over_sasl_ssl_with_one_principal_per_role(secure_pipeline, secure_broker):
    pipeline = secure_pipeline
    predictor = pipeline.start_predictor("--retrain-every", "30")
    trainer = pipeline.start_trainer("--promotion-tolerance", "1.0")
    summary, _ = pipeline.sample_app("--n", "30", "--rate", "0", "--timeout", "90")
    assert summary["answered"] == 30 and summary["unanswered"] == 0 and summary["model_versions"] == [1]
    wait_for_event_as(
        pipeline, secure_broker, "model_events", "training_completed", trainer, 300, version=2, promoted=True
    )
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 60)
    summary, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--start", "30", "--timeout", "90")
    assert summary["model_versions"] == [2] and summary["unanswered"] == 0
    for service in (predictor, trainer):
        assert "secret" not in service.log_text()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    "role, topic",
    [("app", "model_events"), ("predictor", "model_events"), ("app", "observations"), ("trainer", "predictions")],
)
def test_a_role_cannot_write_where_it_has_no_business(secure_pipeline, secure_broker, client, role, topic):
    settings = role_settings(secure_broker, role, client)
    producer = create_producer(settings, ProducerOptions(f"intruder-{uuid.uuid4().hex[:6]}", max_block_ms=10_000))
    try:
        with pytest.raises((AuthorizationFailed, DeliveryFailed), match="(?i)authoriz"):
            delivery = producer.send(secure_pipeline.topic(topic), encode(ModelRolledBack(99).to_dict()))
            producer.flush(timeout_s=10)
            delivery.result(timeout_s=10)
    finally:
        producer.close(timeout_s=2)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    "role, topic", [("app", "observations"), ("app", "app_messages"), ("predictor", "observations")]
)
def test_a_role_cannot_read_what_it_has_no_business_reading(secure_pipeline, secure_broker, client, role, topic):
    settings = role_settings(secure_broker, role, client)
    consumer = create_consumer(settings, ConsumerOptions(f"reader-{uuid.uuid4().hex[:6]}"))
    try:
        with pytest.raises(KafkaError, match="(?i)authoriz|not assigned|does not exist"):
            consumer.assign([Partition(secure_pipeline.topic(topic), 0)])
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                consumer.poll(0.5)
    finally:
        consumer.close()


def test_a_script_run_with_the_wrong_role_says_access_denied(secure_pipeline, secure_broker):
    # An app that tries to roll the predictors back to another model.
    env = {**secure_pipeline.env, **credentials(secure_broker, "app")}
    result = run_script("rollback.py", ["1"], env, timeout_s=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "access denied" in result.stderr and "app-secret" not in result.stderr
    assert read_topic_as(secure_pipeline, secure_broker, "admin", "model_events") == [], "nothing was announced"


@pytest.fixture(scope="session")
def foreign_ca(tmp_path_factory) -> Path:
    """A CA the broker's certificate was not signed by."""
    folder = tmp_path_factory.mktemp("foreign-ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=someone else"]
        + ["-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem")],
        check=True,
        capture_output=True,
    )
    return folder / "ca.pem"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("case", ["untrusted-ca", "wrong-host-name"])
def test_tls_is_verified(secure_pipeline, secure_broker, foreign_ca, client, case):
    if case == "untrusted-ca":
        env = credentials(secure_broker, "predictor", ca_file=foreign_ca)
    else:  # the certificate names localhost only
        port = secure_broker.sasl_ssl_bootstrap.rsplit(":", 1)[1]
        env = credentials(secure_broker, "predictor", bootstrap=f"127.0.0.1:{port}")
    env = {**secure_pipeline.env, **env, "KAFKA_CLIENT": client}
    started = time.monotonic()
    result = run_script("predictor.py", ["--metrics-port", "0"], env, timeout_s=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "authentication failed" in result.stderr
    assert "certificate" in result.stderr.lower() or "ssl" in result.stderr.lower()
    assert time.monotonic() - started < 90


def wait_for_event_as(
    pipeline: Pipeline,
    broker,
    topic: str,
    event: str,
    service: ServiceProcess,
    timeout_s: float,
    role: str = "admin",
    **fields: object,
) -> list[dict]:
    """The events of this kind (with these field values) on one of this test's topics, read with a
    role's credentials, once there is one; fail early if `service`, which is to send it, exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [
            record
            for record in read_topic_as(pipeline, broker, role, topic)
            if record.get("event") == event and all(record.get(name) == value for name, value in fields.items())
        ]
        if found:
            return found
        assert service.process.poll() is None, (
            f"{service.name} exited with {service.process.returncode}:\n{service.tail()}"
        )
        time.sleep(1)
    raise AssertionError(f"no {event} {fields} on {topic} after {timeout_s}s:\n{service.tail()}")


def read_topic_as(pipeline: Pipeline, broker, role: str, name: str) -> list[dict]:
    """Every record of one of this test's topics, read with a role's credentials."""
    consumer = create_consumer(role_settings(broker, role, "kafka-python"), ConsumerOptions("check"))
    try:
        topic = pipeline.topic(name)
        partitions = [Partition(topic, p) for p in sorted(consumer.partitions_for(topic))]
        ends = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(partitions)
        records: list = []
        deadline = time.monotonic() + 10
        while sum(ends.values()) > len(records) and time.monotonic() < deadline:
            records += consumer.poll(0.5)
        return [json.loads(record.value or b"{}") for record in records]
    finally:
        consumer.close()
