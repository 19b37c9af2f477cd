"""The pipeline against a real schema registry (Apicurio Registry 3.3.3, started by scripts/registry.sh):
requests produced by confluent-kafka's JSONSerializer and AvroSerializer (and by our codec) answered
in their format by either Kafka client; records the registry cannot vouch for; registration at
initialize and at publish; an incompatible spec refused; a registry outage while requests flow."""

import base64
import dataclasses
import io
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import fastavro
import pytest
from kafka import KafkaProducer

from tests.conftest import ADULT_RECORD, run_server_script
from tests.integration.conftest import Pipeline, base_env
from tests.integration.metrics import free_port
from tests.integration.processes import ROOT, ServiceProcess, run_script
from train.schema_registration import register_schemas
from utils.data import default_spec
from utils.model_store import ModelStore
from utils.schema_registry import wire
from utils.schema_registry.client import RegistryClient
from utils.schema_registry.schemas import AvroAnswers, avro_request, request_schema
from utils.settings import Topics
from utils.spec import Field, to_toml

SPEC = default_spec()
# The tests' own registry calls wait longer than a service's (2 s on its serving thread): a registry
# JVM just started on a loaded machine can take seconds over its first writes.
ADMIN_TIMEOUT_S = 30.0


class LocalRegistry:
    """scripts/registry.sh on its own port and state folder (the unpacked app is shared)."""

    def __init__(self, state_dir: Path, port: int):
        self.env = {**os.environ, "REGISTRY_PORT": str(port), "REGISTRY_STATE_DIR": str(state_dir)}
        self.url = f"http://localhost:{port}/apis/ccompat/v7"

    def run(self, command: str) -> None:
        run_server_script("registry.sh", command, self.env, timeout_s=300)


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory):
    """The registry `make test` started, or one of this module's own."""
    url = os.environ.get("PIPELINE_TEST_REGISTRY_URL")
    if url:
        yield url
        return
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"), free_port())
    registry.run("start")
    yield registry.url
    registry.run("stop")


def topics_of(pipeline: Pipeline) -> Topics:
    return Topics(app_messages=pipeline.topic("app_messages"), predictions=pipeline.topic("predictions"))


def json_request(request_id: str, **changes) -> bytes:
    return json.dumps({"request_id": request_id, "data": {**ADULT_RECORD, **changes}}).encode()


def avro_payload(request_id: str, schema_text: str) -> bytes:
    out = io.BytesIO()
    record = avro_request({"request_id": request_id, "data": dict(ADULT_RECORD)}, SPEC)
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(schema_text)), record)
    return out.getvalue()


def produce(pipeline: Pipeline, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap)
    try:
        for value in values:
            producer.send(pipeline.topic("app_messages"), value)
        producer.flush(30)
    finally:
        producer.close()


def read_answers(pipeline: Pipeline, registry: RegistryClient, count: int, timeout_s: float = 90) -> dict[str, tuple]:
    """request id -> (format the answer came in, answer), once `count` answers are there."""
    deadline = time.monotonic() + timeout_s
    formats: dict[int, str] = {}
    while True:
        answers = {}
        for value in pipeline.read_values("predictions", timeout_s=1):
            if wire.is_framed(value):
                schema_id = wire.schema_id_of(value)
                formats.setdefault(schema_id, registry.schema(schema_id).format)
                payload = wire.payload_of(value)
                if formats[schema_id] == "json":
                    answer = json.loads(payload)
                else:
                    answer = AvroAnswers().decode(payload)
                answers[answer["request_id"]] = (formats[schema_id], answer)
            else:
                answer = json.loads(value)
                answers[answer["request_id"]] = ("plain", answer)
        if len(answers) >= count or time.monotonic() > deadline:
            return answers
        time.sleep(0.5)


@pytest.mark.parametrize(
    "schema_format, predictor_client, app_client",
    [
        ("json", "kafka-python", "confluent"),
        ("avro", "kafka-python", "confluent"),
        ("json", "confluent", "kafka-python"),
        ("avro", "confluent", "confluent"),
    ],
)
def test_requests_through_the_registry_are_answered_in_their_format(
    pipeline, registry_url, schema_format, predictor_client, app_client
):
    """confluent-kafka's serializers (app_client confluent) or our codec (kafka-python) write the
    requests; the answers come back in the same format, readable by the same library; plain JSON
    requests beside them are answered as before."""
    ids = register_schemas(RegistryClient(registry_url, ADMIN_TIMEOUT_S), SPEC, schema_format, topics_of(pipeline))
    pipeline.script_env["predictor.py"] = {"SCHEMA_REGISTRY_URL": registry_url, "KAFKA_CLIENT": predictor_client}
    predictor = pipeline.start_predictor()
    pipeline.script_env["sample_app.py"] = {"SCHEMA_REGISTRY_URL": registry_url, "KAFKA_CLIENT": app_client}
    summary, _ = pipeline.sample_app("--n", "40", "--rate", "0", "--explain")
    library = "confluent-kafka's serializers" if app_client == "confluent" else "our codec"
    assert summary["format"] == f"{schema_format} (wire format, {library})"
    assert summary["answered"] == 40 and summary["errors"] == 0, summary
    pipeline.script_env["sample_app.py"] = {}
    plain, _ = pipeline.sample_app("--n", "10", "--rate", "0")
    assert plain["format"] == "plain" and plain["answered"] == 10 and plain["errors"] == 0
    values = pipeline.read_values("predictions")
    framed = [value for value in values if wire.is_framed(value)]
    assert len(framed) == 40 and len(values) == 50
    assert {wire.schema_id_of(value) for value in framed} == {ids.answer_id}
    assert predictor.metric(f"pipeline_wire_requests_total{{format={schema_format}}}") == 40


@pytest.mark.parametrize("schema_format", ["json", "avro"])
def test_records_the_registry_cannot_vouch_for_get_an_error_answer_or_a_dead_letter(
    pipeline, registry_url, schema_format
):
    registry = RegistryClient(registry_url, ADMIN_TIMEOUT_S)
    ids = register_schemas(registry, SPEC, schema_format, topics_of(pipeline))
    # Another topic's own schema (the same text would get the same id, registered under both subjects).
    another = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "title": "another form"}
    other = registry.register(pipeline.topic("other-value"), "json", json.dumps(another))
    pipeline.script_env["predictor.py"] = {"SCHEMA_REGISTRY_URL": registry_url}
    predictor = pipeline.start_predictor()
    if schema_format == "json":
        good, broken = (
            wire.frame(ids.request_id, json_request("good")),
            wire.frame(ids.request_id, b'{"request_id": "broken", "data"'),
        )
    else:
        text = request_schema(SPEC, "avro")
        good = wire.frame(ids.request_id, avro_payload("good", text))
        broken = wire.frame(ids.request_id, avro_payload("broken", text)[:15])  # truncated: its id is still readable
    unreadable = (
        wire.frame(ids.request_id, b"\x00\x01\x02") if schema_format == "avro" else wire.frame(ids.request_id, b"\x01")
    )
    produce(
        pipeline,
        [
            good,
            broken,
            wire.frame(2**31 - 7, json_request("unknown-id")),
            wire.frame(other, json_request("other-subject")),
            json_request("plain"),
            unreadable,
        ],
    )
    answers = read_answers(pipeline, registry, count=5)
    codes = {rid: (fmt, answer.get("error", {}).get("code")) for rid, (fmt, answer) in answers.items()}
    broken_code = "invalid_json" if schema_format == "json" else "schema_mismatch"
    # A JSON payload under an id it cannot read is answered in JSON: framed while a JSON answer
    # schema is registered, else plain (no answer schema id to frame it with).
    foreign = "json" if schema_format == "json" else "plain"
    assert codes == {
        "good": (schema_format, None),
        "broken": (schema_format, broken_code),
        "unknown-id": (foreign, "schema_mismatch"),
        "other-subject": (foreign, "schema_mismatch"),
        "plain": ("plain", None),
    }
    dead = pipeline.read_topic("app_messages_dlq")
    assert [(d["code"], base64.b64decode(d["raw_base64"])) for d in dead] == [(broken_code, unreadable)]
    assert predictor.process.poll() is None


def incompatible_adult_spec(folder: Path) -> Path:
    """Adult's spec with `age` a category: a string where the registered schema has a number."""
    fields = tuple(Field("age", "categorical") if item.name == "age" else item for item in SPEC.fields)
    path = folder / "adult-age-as-text.toml"
    path.write_text(to_toml(dataclasses.replace(SPEC, fields=fields).relative_to(folder)))
    return path


def test_versions_record_their_schemas_and_an_incompatible_spec_is_never_trained(tmp_path, registry_url):
    """initialize registers (Avro here) and records the ids; a retrain registers again and records
    the same ids; a spec whose schema the registry refuses exits 2 and nothing new serves."""
    prefix = f"it-{uuid.uuid4().hex[:8]}-"
    env = base_env(tmp_path, prefix) | {"SCHEMA_REGISTRY_URL": registry_url}
    initialized = run_script(
        "initialize.py", ["--max-evals", "2", "--threads", "2", "--schema-format", "avro"], env, timeout_s=600
    )
    assert initialized.returncode == 0, initialized.stderr[-3000:]
    store = ModelStore(tmp_path / "models")
    first = store.metadata(1).schemas
    registry = RegistryClient(registry_url, ADMIN_TIMEOUT_S)
    assert first is not None and first.format == "avro"
    assert first.request_subject == f"{prefix}app_messages-value"
    assert registry.latest(first.request_subject).schema_id == first.request_id
    assert registry.latest(first.answer_subject).schema_id == first.answer_id
    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(store.metadata(1).mlflow_run_id)
    assert run.data.tags["request_schema"] == f"{first.request_subject}:{first.request_id}"

    services = []
    for script, args in (("predictor.py", ["--retrain-every", "30"]), ("trainer.py", ["--max-evals", "2"])):
        port = free_port()
        arguments = [*args, "--metrics-port", str(port), "--group-id", f"{prefix}{script}"]
        services.append(ServiceProcess(script, arguments, env, tmp_path / f"{script}.log", port))
    try:
        for service in services:
            service.wait_until_ready()
        sample = run_script(
            "sample_app.py", ["--n", "40", "--rate", "0", "--quiet"], env | {"KAFKA_CLIENT": "confluent"}, 300
        )
        assert sample.returncode == 0, sample.stdout[-2000:] + sample.stderr[-2000:]
        deadline = time.monotonic() + 300
        while store.latest_version() != 2 and time.monotonic() < deadline:
            time.sleep(1)
        assert store.latest_version() == 2, services[1].tail()
        assert store.metadata(2).schemas == first
    finally:
        for service in services:
            service.stop()

    serving = store.current_version()
    refused = run_script(
        "initialize.py",
        ["--force", "--max-evals", "2", "--spec", str(incompatible_adult_spec(tmp_path)), "--schema-format", "avro"],
        env,
    )
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "refuses" in refused.stderr
    assert store.latest_version() == 2 and store.current_version() == serving
    assert registry.latest(first.request_subject).schema_id == first.request_id


def test_known_schemas_keep_serving_while_the_registry_is_down(pipeline, tmp_path):
    """Requests with an id the predictor has read are answered through the outage; a new id is
    answered schema_unavailable (and counted) until the registry is back, then served."""
    registry = LocalRegistry(tmp_path / "registry", free_port())
    registry.run("start")
    try:
        client = RegistryClient(registry.url, ADMIN_TIMEOUT_S)
        ids = register_schemas(client, SPEC, "json", topics_of(pipeline))
        pipeline.script_env["predictor.py"] = {"SCHEMA_REGISTRY_URL": registry.url}
        predictor = pipeline.start_predictor()
        # A newer version of the requests' schema, registered after the predictor looked at start.
        newer = json.loads(request_schema(SPEC, "json")) | {"description": "the same form, described"}
        later_id = client.register(ids.request_subject, "json", json.dumps(newer))
        assert later_id != ids.request_id
        known = lambda name, n: [wire.frame(ids.request_id, json_request(f"{name}-{i}")) for i in range(n)]  # noqa: E731
        later = lambda name, n: [wire.frame(later_id, json_request(f"{name}-{i}")) for i in range(n)]  # noqa: E731
        produce(pipeline, known("before", 10))
        assert len(read_answers(pipeline, client, count=10)) == 10

        registry.run("kill")
        produce(pipeline, known("during", 20) + later("new", 5))
        predictor.wait_for_metric("pipeline_request_errors_total{code=schema_unavailable}", lambda n: n >= 5)
        assert predictor.metric("pipeline_schema_registry_reachable") == 0

        registry.run("start")
        produce(pipeline, later("after", 10))
        answers = read_answers(pipeline, client, count=45)
        errors = {rid: answer.get("error", {}).get("code") for rid, (_, answer) in answers.items()}
        assert len(answers) == 45
        assert all(errors[f"during-{i}"] is None for i in range(20))
        assert all(errors[f"new-{i}"] == "schema_unavailable" for i in range(5))
        assert all(errors[f"after-{i}"] is None for i in range(10))
        assert predictor.metric("pipeline_schema_registry_reachable") == 1
        assert predictor.process.poll() is None
    finally:
        registry.run("stop")


def test_the_sample_app_needs_a_registered_schema(pipeline, registry_url):
    pipeline.script_env["sample_app.py"] = {"SCHEMA_REGISTRY_URL": registry_url}
    result = run_script("sample_app.py", ["--n", "1"], pipeline.env_for("sample_app.py"), timeout_s=120)
    assert result.returncode == 2 and "no request schema" in result.stderr


def test_without_a_java_21_the_registry_says_what_it_found(tmp_path):
    """The only JVM here answers 17: one line naming it, exit 1, nothing started."""
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "    java.specification.version = 17" >&2\n')
    fake.chmod(0o755)
    env = {
        "PATH": f"{fake.parent}:/usr/bin:/bin",
        "REGISTRY_JVM_DIR": str(tmp_path / "no-jvms"),
        "REGISTRY_STATE_DIR": str(tmp_path / "state"),
        "REGISTRY_PORT": str(free_port()),
    }
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "registry.sh"), "start"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"registry: error: Apicurio Registry 3.3.3 needs Java 21 or newer; found: {fake} (17). "
        "Install a JDK 21+ and set JAVA_HOME to it"
    ]
