"""Access control: the pipeline runs on a SASL/PLAIN listener with the right credentials; with
wrong or missing ones every service stops at once with a clear error and never prints the secret."""

import time

import pytest

from tests.integration.conftest import Pipeline
from tests.integration.processes import run_script

USER, PASSWORD = "pipeline", "pipeline-secret"  # scripts/kafka.sh defaults


def sasl_env(pipeline, password: str | None) -> dict:
    env = {
        **pipeline.env,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": USER,
    }
    env.pop("KAFKA_SASL_PASSWORD", None)
    if password is not None:
        env["KAFKA_SASL_PASSWORD"] = password
    return env


@pytest.fixture
def sasl_pipeline(tmp_path, initialized, private_broker):
    world = Pipeline(tmp_path, initialized, private_broker.sasl_bootstrap)
    yield world
    world.stop_all()


def test_pipeline_runs_with_the_right_credentials(sasl_pipeline):
    sasl_pipeline.env = sasl_env(sasl_pipeline, PASSWORD)
    predictor = sasl_pipeline.start_predictor()
    summary, _ = sasl_pipeline.sample_app("--n", "30", "--rate", "0", "--timeout", "60")
    assert summary["answered"] == 30 and summary["unanswered"] == 0
    assert PASSWORD not in predictor.log_text()


WRONG = "not-the-password-4711"


@pytest.mark.parametrize("script", ["predictor.py", "trainer.py", "sample_app.py"])
@pytest.mark.parametrize("password", [WRONG, None], ids=["wrong-password", "no-password"])
def test_wrong_or_missing_credentials_stop_at_once(sasl_pipeline, script, password):
    env = sasl_env(sasl_pipeline, password)
    started = time.monotonic()
    result = run_script(script, ["--n", "1"] if script == "sample_app.py" else [], env, timeout_s=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr[-2000:]
    assert "authentication failed" in result.stderr
    # The error says what is wrong: the broker's verdict, or which setting is missing.
    assert ("Invalid username or password" if password else "KAFKA_SASL_PASSWORD") in result.stderr
    assert WRONG not in result.stderr and WRONG not in result.stdout
    # A few seconds on an idle machine (imports + one 5 s bootstrap attempt); generous for busy CI.
    assert elapsed < 60, f"took {elapsed:.0f}s"
