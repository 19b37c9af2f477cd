"""Shadow and canary rollouts on the real broker: challengers judged on live labels, a canary split by
request id, operators deciding early, and a tally that survives kill -9 of predictor and trainer."""

import time
import uuid
from collections import Counter
from dataclasses import replace

import mlflow
import pytest
from kafka import KafkaProducer
from mlflow import MlflowClient

from tests.integration.figures import record_figures
from tests.integration.processes import run_script
from utils.data import default_spec, frame_to_records, labels_of, load_dataset
from utils.form import Form
from utils.messages.codec import encode
from utils.messages.events import ChallengerStarted
from utils.messages.requests import PredictionRequest
from utils.model_store import ModelStore


def send_requests(pipeline, requests):
    """Send prediction requests to the test's app topic, as an app would."""
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap, linger_ms=5)
    try:
        for request in requests:
            producer.send(pipeline.topic("app_messages"), encode(request.to_dict(ADULT)), request.request_id.encode())
        producer.flush(timeout=60)
    finally:
        producer.close()


ADULT = Form(default_spec())


def stream_rows():
    return load_dataset(ADULT.spec).stream


def wait_for_event(pipeline, event, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in pipeline.read_topic("retrain_topic", timeout_s=1) if m.get("event") == event]
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"no {event} within {timeout_s}s")


def wait_for_answers_to(pipeline, request_ids, timeout_s=120):
    """The answers (last one per id) to these requests, once every one is answered."""
    wanted = set(request_ids)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answers = {a["request_id"]: a for a in pipeline.read_topic("predictions", timeout_s=1)}
        if wanted <= answers.keys():
            return answers
        time.sleep(1)
    raise AssertionError(f"{len(wanted - answers.keys())} of {len(wanted)} requests unanswered after {timeout_s}s")


def poisoned_requests():
    """A labelling bug: one occupation's labels flipped, twice over (enough for a retrain to learn it)."""
    stream = stream_rows()
    exec_rows = stream[stream["occupation"] == "Exec-managerial"]
    poisoned = [
        PredictionRequest(f"poison-{copy}-{index}", row, 1 - label)
        for copy in range(2)
        for index, (row, label) in enumerate(
            zip(frame_to_records(exec_rows, ADULT.spec), labels_of(exec_rows), strict=True)
        )
    ]
    assert len(poisoned) >= 2000
    return poisoned


def rejected_on_live_labels(pipeline):
    """The store and version 2's rollout decision, once live labels rejected it (version 1 serves)."""
    [decided] = wait_for_event(pipeline, "rollout_decided")
    assert (decided["version"], decided["promoted"], decided["decided_by"]) == (2, False, "live judgement")
    store = ModelStore(pipeline.root / "models")
    assert store.current_version() == 1 and store.challenger() is None
    decision = store.metadata(2).rollout_decision
    assert decision is not None and decision.figures is not None
    return store, decision


def test_shadow_rejects_a_worse_challenger_early(pipeline):
    """The same labelling bug under the sequential rule: the confidence sequence on the log-loss
    difference shows the challenger worse beyond the margin long before the budget of pairs."""
    predictor = pipeline.start_predictor("--retrain-every", "2000")
    trainer = pipeline.start_trainer("--rollout", "shadow", "--promotion-tolerance", "0.05")
    send_requests(pipeline, poisoned_requests())
    pipeline.wait_for_event("challenger_started", 1, 420, service=trainer, version=2, champion_version=1, mode="shadow")
    predictor.wait_for_metric("pipeline_challenger_loaded", lambda version: version == 2, 60)
    pipeline.sample_app("--n", "600", "--rate", "0", "--start", "0")

    store, decision = rejected_on_live_labels(pipeline)
    judgement = decision.figures["judgement"]
    interval = judgement["log_loss_difference"]
    assert judgement["rule"] == "sequential" and judgement["pairs"] < 500, "decided before the budget"
    assert interval["low"] > judgement["log_loss_margin"], "worse beyond the margin, with confidence"
    assert judgement["health"]["failed"] == 0 and judgement["health"]["scoring_us"] > 0
    assert decision.figures["labelled"] == judgement["pairs"]
    run = MlflowClient(pipeline.env["MLFLOW_TRACKING_URI"]).get_run(store.metadata(2).mlflow_run_id)
    assert run.data.metrics["live_pairs_to_decision"] == judgement["pairs"]
    record_figures("sequential_rejection", judgement)


def test_shadow_rejects_a_worse_challenger_on_live_labels_across_kill9s(pipeline):
    """A labelling bug flipped one occupation's labels for a while; the retrained model passes a
    lenient holdout gate, goes on trial in shadow, and live labels reject it. Predictor and trainer
    are killed -9 mid-tally: the tally lives in the observations log and resumes. The fixed rule
    judges, so that the decision waits for both lives of each process (the sequential rule may
    reject so plain a loser before the kills: test_shadow_rejects_a_worse_challenger_early)."""
    predictor = pipeline.start_predictor("--retrain-every", "2000")
    trainer_args = (
        "--rollout",
        "shadow",
        "--promotion-tolerance",
        "0.05",
        "--shadow-min-labelled",
        "600",
        "--shadow-judgement",
        "fixed",
    )
    trainer = pipeline.start_trainer(*trainer_args)
    send_requests(pipeline, poisoned_requests())
    pipeline.wait_for_event("challenger_started", 1, 420, service=trainer, version=2, champion_version=1, mode="shadow")
    predictor.wait_for_metric("pipeline_challenger_loaded", lambda version: version == 2, 60)

    first, _ = pipeline.sample_app("--n", "400", "--rate", "0", "--start", "0")
    predictor.kill9()
    trainer.kill9()
    predictor = pipeline.start_predictor("--retrain-every", "2000")
    predictor.wait_for_metric("pipeline_challenger_loaded", lambda version: version == 2, 60)
    trainer = pipeline.start_trainer(*trainer_args)
    second, _ = pipeline.sample_app("--n", "400", "--rate", "0", "--start", "400")

    store, decision = rejected_on_live_labels(pipeline)
    figures = decision.figures
    interval = figures["auc_difference"]
    assert figures["labelled"] >= 600, "both predictor lives and both trainer lives count"
    assert figures["judgement"]["rule"] == "fixed"
    assert interval["low"] < -0.005 and interval["high"] < 0
    assert store.metadata(2).promoted is True, "the holdout gate had let it through"
    for summary in (first, second):
        assert summary["unanswered"] == summary["errors"] == 0 and summary["model_versions"] == [1]
    roles = Counter((a.get("role"), a.get("model_version")) for a in pipeline.read_topic("predictions"))
    assert set(roles) == {("champion", 1)}, "in shadow the challenger never answers"

    mlflow.set_tracking_uri(pipeline.env["MLFLOW_TRACKING_URI"])
    run = MlflowClient().get_run(store.metadata(2).mlflow_run_id)
    assert run.data.tags["rollout_promoted"] == "False"
    assert run.data.metrics["live_auc_difference_high"] == pytest.approx(interval["high"])
    record_figures(
        "shadow_rejection",
        {
            "labelled": figures["labelled"],
            "holdout_auc_champion": store.metadata(1).metrics["holdout_auc"],
            "holdout_auc_challenger": store.metadata(2).metrics["holdout_auc"],
            "live_auc_champion": figures["champion"]["auc"],
            "live_auc_challenger": figures["challenger"]["auc"],
            "auc_difference": interval,
        },
    )


def test_canary_splits_by_request_id_and_live_labels_promote_an_equal_challenger(pipeline):
    predictor = pipeline.start_predictor("--retrain-every", "1000")
    trainer = pipeline.start_trainer(
        "--rollout", "canary", "--canary-fraction", "0.2", "--shadow-min-labelled", "500", "--shadow-margin", "0.01"
    )
    pipeline.sample_app("--n", "1000", "--rate", "0", "--start", "0")
    pipeline.wait_for_event(
        "challenger_started", 1, 420, service=trainer, version=2, champion_version=1, mode="canary", canary_fraction=0.2
    )
    predictor.wait_for_metric("pipeline_challenger_loaded", lambda version: version == 2, 60)

    rows = frame_to_records(stream_rows(), ADULT.spec)
    ids = [str(uuid.uuid4()) for _ in range(10_000)]
    send_requests(pipeline, [PredictionRequest(rid, rows[i % len(rows)]) for i, rid in enumerate(ids)])
    answers = wait_for_answers_to(pipeline, ids)
    roles = Counter(answers[rid]["role"] for rid in ids)
    share = roles["challenger"] / len(ids)
    assert abs(share - 0.2) <= 0.02
    assert {(a["role"], a["model_version"]) for a in (answers[rid] for rid in ids)} == {
        ("champion", 1),
        ("challenger", 2),
    }
    # The same ids again (a client retrying): each is answered by the model of its first answer.
    send_requests(pipeline, [PredictionRequest(rid, rows[0]) for rid in ids[:300]])
    pipeline.wait_for_answers(1000 + len(ids) + 300)
    retried = set(ids[:300])
    again = Counter(
        (a["request_id"], a["role"]) for a in pipeline.read_topic("predictions") if a["request_id"] in retried
    )
    assert len(again) == 300 and min(again.values()) >= 2, "a retried id keeps its role"

    pipeline.sample_app("--n", "600", "--rate", "0", "--start", "1000")
    [decided] = wait_for_event(pipeline, "rollout_decided")
    assert (decided["version"], decided["promoted"], decided["decided_by"]) == (2, True, "live judgement")
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 60)
    decision = ModelStore(pipeline.root / "models").metadata(2).rollout_decision
    assert decision is not None and decision.figures is not None
    judgement = decision.figures["judgement"]
    interval = judgement["log_loss_difference"]
    # Promoted either by the sequence (its interval below the margin) or at the budget by DeLong.
    assert judgement["rule"] in ("sequential", "fixed") and judgement["pairs"] <= 500
    assert interval["low"] <= interval["estimate"] <= interval["high"]
    if judgement["rule"] == "sequential":
        assert interval["high"] < judgement["log_loss_margin"] and decision.figures["labelled"] == judgement["pairs"]
    assert predictor.metric("pipeline_role_version{role=challenger}") == 0, "the challenger promoted: no rollout"
    assert predictor.metric("pipeline_model_swaps_total") == 1
    after, _ = pipeline.sample_app("--n", "50", "--rate", "0", "--start", "1600")
    assert after["model_versions"] == [2] and after["unanswered"] == 0
    assert ModelStore(pipeline.root / "models").current_version() == 2
    record_figures("canary_split", {"requests": len(ids), "fraction": 0.2, "challenger_share": share})
    record_figures("canary_judgement", judgement)


@pytest.mark.parametrize("command, promoted", [("promote.py", True), ("rollback.py", False)])
def test_an_operator_decides_a_rollout_early(pipeline, command, promoted):
    """A challenger already in the store (as after a trainer restart): a predictor that starts joins
    the rollout, and `promote.py` / `rollback.py` (no version) end it either way."""
    store = ModelStore(pipeline.root / "models")
    files = store.read_verified(1)
    store.publish(files, replace(store.metadata(1), trigger="test", mlflow_run_id=""))
    store.set_challenger(ChallengerStarted(2, 1, "shadow", 0.0, 0))
    predictor = pipeline.start_predictor()
    predictor.wait_for_metric("pipeline_challenger_loaded", lambda version: version == 2, 60)
    before, _ = pipeline.sample_app("--n", "100", "--rate", "0")
    assert before["model_versions"] == [1] and before["unanswered"] == 0
    observations = pipeline.read_topic("observations")
    assert {tuple(sorted(o["scores"])) for o in observations} == {("1", "2")}, "both models scored every request"

    result = run_script(command, [], pipeline.env)
    assert result.returncode == 0, result.stderr[-3000:]
    [decided] = wait_for_event(pipeline, "rollout_decided", 30)
    assert (decided["promoted"], decided["decided_by"]) == (promoted, "operator" if promoted else "rollback")
    assert store.challenger() is None and store.current_version() == (2 if promoted else 1)
    decision = store.metadata(2).rollout_decision
    assert decision is not None
    if promoted:
        assert decision.figures is not None and decision.figures["labelled"] == 100, (
            "the figures at the time of the decision are recorded"
        )
    predictor.wait_for_metric("pipeline_role_version{role=challenger}", lambda version: version == 0, 30)
    assert predictor.metric("pipeline_challenger_loaded") == 0
    after, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--start", "100")
    assert after["model_versions"] == [2 if promoted else 1]
