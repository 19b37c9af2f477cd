"""backtest.py on a real observations log: two real versions of the store judged in both orders."""

import json
from dataclasses import replace

import lightgbm as lgb
import pytest
from kafka import KafkaProducer

from tests.integration.figures import record_figures
from tests.integration.processes import run_script
from utils.data import default_spec, frame_to_records, labels_of, load_dataset
from utils.kafka.topics import ensure_topics
from utils.messages.codec import encode
from utils.messages.requests import Observation
from utils.model_store import MODEL_FILE, REFERENCE_FILE, ModelStore
from utils.settings import KafkaSettings, Topics

OBSERVATIONS = 2000


def publish_a_weaker_version(store: ModelStore) -> int:
    """Version 1 cut to a tenth of its trees: a real LightGBM model, published like any version (its
    reference rows left out: they hold the full model's scores)."""
    files = store.read_verified(1)
    booster = lgb.Booster(model_str=files[MODEL_FILE].decode("utf-8"))
    fewer = booster.model_to_string(num_iteration=max(1, booster.current_iteration() // 10))
    weaker = {name: content for name, content in files.items() if name != REFERENCE_FILE}
    return store.publish(weaker | {MODEL_FILE: fewer.encode("utf-8")}, replace(store.metadata(1), trigger="test"))


def write_observations(pipeline) -> None:
    """Labelled adult.test rows, as predictors log them."""
    topics = Topics().with_prefix(pipeline.prefix)
    ensure_topics(KafkaSettings(bootstrap_servers=pipeline.bootstrap), topics, [topics.observations])
    spec = default_spec()
    rows = load_dataset(spec).stream.head(OBSERVATIONS)
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap, linger_ms=5)
    try:
        for number, (row, label) in enumerate(zip(frame_to_records(rows, spec), labels_of(rows).tolist(), strict=True)):
            producer.send(topics.observations, encode(Observation(f"obs-{number}", row, int(label)).to_dict()))
        producer.flush(timeout=60)
    finally:
        producer.close()


def backtest(pipeline, *args: str) -> dict:
    summary = pipeline.root / f"backtest-{len(list(pipeline.root.glob('backtest-*.json')))}.json"
    result = run_script("backtest.py", [*args, "--summary-json", str(summary)], pipeline.env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "verdict:" in result.stdout
    return json.loads(summary.read_text())


def mirrored(first: dict, second: dict) -> None:
    assert first["estimate"] == pytest.approx(-second["estimate"], abs=1e-12)
    assert (first["low"], first["high"]) == pytest.approx((-second["high"], -second["low"]), abs=1e-12)


def test_both_orders_of_two_versions_give_mirrored_results(pipeline):
    store = ModelStore(pipeline.root / "models")
    weaker = publish_a_weaker_version(store)
    write_observations(pipeline)

    challenged = backtest(pipeline, "--version", str(weaker))  # against the current one, version 1
    swapped = backtest(pipeline, "--version", "1", "--against", str(weaker))
    assert (challenged["version"], challenged["against"]) == (weaker, 1)
    assert (swapped["version"], swapped["against"]) == (1, weaker)
    for result in (challenged, swapped):
        assert result["observations"] == result["pairs"] == OBSERVATIONS
    mirrored(challenged["log_loss_sequence"], swapped["log_loss_sequence"])
    mirrored(challenged["figures"]["auc_difference"], swapped["figures"]["auc_difference"])
    mirrored(challenged["figures"]["log_loss_difference"], swapped["figures"]["log_loss_difference"])
    assert challenged["figures"]["champion"] == pytest.approx(swapped["figures"]["challenger"])
    # The same judgement as a rollout's: the weaker version rejected, the full one promoted.
    assert (challenged["verdict"]["decision"], swapped["verdict"]["decision"]) == ("reject", "promote")
    for result in (challenged, swapped):
        judgement = result["verdict"]["judgement"]
        assert judgement["rule"] == "sequential" and judgement["pairs"] < 500
    assert challenged["log_loss_sequence"]["low"] > 0

    part = backtest(pipeline, "--version", str(weaker), "--from-offset", "500", "--to-offset", "1500")
    assert part["observations"] == 1000
    record_figures(
        "backtest_mirrored",
        {
            "pairs": OBSERVATIONS,
            "log_loss_sequence": challenged["log_loss_sequence"],
            "auc_difference": challenged["figures"]["auc_difference"],
            "pairs_to_decision": [r["verdict"]["judgement"]["pairs"] for r in (challenged, swapped)],
            "scoring_us": challenged["verdict"]["judgement"]["health"]["scoring_us"],
        },
    )


def test_a_bad_flag_says_so_in_one_line_and_exits_2(pipeline):
    result = run_script("backtest.py", ["--version", "7"], pipeline.env)
    assert result.returncode == 2
    result = run_script("backtest.py", ["--from-offset", "-1", "--version", "1"], pipeline.env)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
