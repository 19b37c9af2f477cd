"""The predictor's default scorer: it serves on LightGBM at once, moves to the compiled form once
built and checked, answers exactly as LightGBM would; a restart reuses the cached object, and a
cached object that does not match its digest is never loaded (LightGBM keeps serving)."""

import shutil
import time

import lightgbm as lgb
import numpy as np

from tests.integration.metrics import free_port, scrape
from utils.compiled_cache import CACHE_DIR, MANIFEST_FILE, OBJECT_FILE
from utils.data import default_spec
from utils.features import Preprocessor
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE, ModelStore


def wait_for_compiled_scoring(port: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if scrape(port).get("pipeline_compiled_scoring") == 1.0:
                return
        except OSError:
            pass  # the endpoint is not up yet
        time.sleep(0.5)
    raise AssertionError(f"the predictor did not switch to the compiled form within {timeout_s}s")


def test_the_compiled_form_serves_the_same_answers_and_is_cached(pipeline):
    shutil.rmtree(pipeline.root / "models" / CACHE_DIR)  # this test builds it (others share a prebuilt one)
    port = free_port()
    # At serving's own priority: at the default niceness a build on these two cores, beside the
    # other test groups, may wait for longer than the test does.
    predictor = pipeline.start_predictor(
        "--retrain-every", "100000", "--metrics-port", str(port), "--background-niceness", "0"
    )
    wait_for_compiled_scoring(port)
    [manifest] = list((pipeline.root / "models" / CACHE_DIR).glob(f"*/{MANIFEST_FILE}"))
    built_at = manifest.stat().st_mtime_ns

    summary, _ = pipeline.sample_app("--n", "200", "--rate", "0", "--timeout", "60")
    assert summary["answered"] == 200 and summary["errors"] == 0

    files = ModelStore(pipeline.root / "models").read_verified(1)
    preprocessor = Preprocessor.from_json(files[PREPROCESSOR_FILE].decode(), default_spec())
    booster = lgb.Booster(model_str=files[MODEL_FILE].decode())
    requests = {r["request_id"]: r["data"] for r in pipeline.read_topic("app_messages")}
    answers = [a for a in pipeline.read_topic("predictions") if a["request_id"] in requests]
    assert len(answers) == 200 and {a["model_version"] for a in answers} == {1}
    expected = booster.predict(preprocessor.transform_records([requests[a["request_id"]] for a in answers]))
    served = np.array([a["probability"] for a in answers])
    assert np.max(np.abs(served - expected)) <= 1e-9, "the compiled form answers as LightGBM does"
    assert [a["prediction"] for a in answers] == [int(p >= 0.5) for p in expected]

    predictor.stop()
    restarted = pipeline.start_predictor("--retrain-every", "100000", "--metrics-port", str(port))
    wait_for_compiled_scoring(port, timeout_s=60)
    assert manifest.stat().st_mtime_ns == built_at, "a restart loads the cached object, it does not rebuild"
    restarted.stop()

    code_file = manifest.parent / OBJECT_FILE
    code = bytearray(code_file.read_bytes())
    code[len(code) // 2] ^= 0xFF  # one flipped byte: machine code nobody built
    code_file.write_bytes(bytes(code))
    tampered = pipeline.start_predictor("--retrain-every", "100000", "--metrics-port", str(port))
    deadline = time.monotonic() + 60
    while scrape(port).get("pipeline_compiled_refused_total{reason=cache_corrupt}") != 1.0:
        assert time.monotonic() < deadline, "the tampered object was not refused"
        time.sleep(0.5)
    summary, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--timeout", "60")
    assert summary["answered"] == 20 and summary["errors"] == 0, "LightGBM serves on"
    assert scrape(port)["pipeline_compiled_scoring"] == 0.0
    tampered.stop()
