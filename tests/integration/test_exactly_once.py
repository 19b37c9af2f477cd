"""Exactly-once processing on the real broker: kill -9 of a predictor under load, on both clients."""

import json
import os
import random
import signal
import time
from collections import Counter

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.integration.figures import record_figures
from utils.kafka.clients import CLIENTS

EXACTLY_ONCE = ("--retrain-every", "100000", "--processing-guarantee", "exactly-once")


def freeze_mid_transaction(pipeline, process, attempts: int = 200, settle_s: float = 1.0) -> int:
    """Stop (SIGSTOP) the predictor at a moment when one of its transactions is open with answers
    already on the broker; returns how many. A kill -9 then leaves that transaction to be aborted.

    Open means still open `settle_s` after the stop: a transaction whose commit the predictor sent
    just before it stopped looks open until the coordinator writes its markers (a slow machine
    showed it), and then commits; such a moment is not taken."""
    readers = {
        isolation: KafkaConsumer(bootstrap_servers=pipeline.bootstrap, isolation_level=isolation)
        for isolation in ("read_uncommitted", "read_committed")
    }
    topic = pipeline.topic("predictions")
    partitions = [TopicPartition(topic, p) for p in sorted(readers["read_committed"].partitions_for_topic(topic))]
    try:
        for _ in range(attempts):
            os.kill(process.pid, signal.SIGSTOP)
            written = readers["read_uncommitted"].end_offsets(partitions)  # high watermarks
            stable = readers["read_committed"].end_offsets(partitions)  # before the first open transaction
            open_answers = sum(written[p] - stable[p] for p in partitions)
            if open_answers > 0:
                time.sleep(settle_s)
                if readers["read_committed"].end_offsets(partitions) == stable:
                    return open_answers
            os.kill(process.pid, signal.SIGCONT)
            time.sleep(random.uniform(0.005, 0.05))
    finally:
        for reader in readers.values():
            reader.close()
    raise AssertionError(f"no open transaction with answers seen in {attempts} tries")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_predictor_killed_under_load_answers_each_request_exactly_once(pipeline, client):
    pipeline.env["KAFKA_CLIENT"] = client
    predictor = pipeline.start_predictor(*EXACTLY_ONCE)
    app, summary_path = pipeline.start_sample_app("--n", "6000", "--rate", "600", "--timeout", "180")
    answered_before = pipeline.wait_for_answers(at_least=600)
    open_answers = freeze_mid_transaction(pipeline, predictor.process)
    predictor.kill9()
    killed_at = time.monotonic()
    restarted = pipeline.start_predictor(*EXACTLY_ONCE)
    assert app.process.wait(timeout=300) == 0, app.tail()
    recovered_s = time.monotonic() - killed_at
    summary = json.loads(summary_path.read_text())
    assert summary["sent"] == summary["answered"] == 6000
    assert summary["unanswered"] == summary["repeated_answers"] == 0

    committed = Counter(a["request_id"] for a in pipeline.read_topic("predictions", read_committed=True))
    assert len(committed) == 6000 and set(committed.values()) == {1}, "each request answered once"
    written = Counter(a["request_id"] for a in pipeline.read_topic("predictions"))
    aborted = sum(written.values()) - sum(committed.values())
    assert aborted >= open_answers > 0, "the killed transaction's answers are in the log, aborted"
    observations = Counter(o["request_id"] for o in pipeline.read_topic("observations", read_committed=True))
    assert len(observations) == 6000 and set(observations.values()) == {1}, "each observation kept once"
    assert restarted.process.poll() is None
    record_figures(
        f"predictor_kill9_exactly_once_{client}",
        {
            "sent": summary["sent"],
            "answered": summary["answered"],
            "answered_before_kill": answered_before,
            "repeated_answers_read_committed": 0,
            "answers_in_the_killed_transaction": open_answers,
            "aborted_answers_in_the_log": aborted,
            "kill_to_all_answered_s": round(recovered_s, 1),
        },
    )


def test_a_trainer_killed_after_announcing_a_version_does_not_announce_it_again(pipeline):
    pipeline.start_predictor("--retrain-every", "50", "--processing-guarantee", "exactly-once")
    trainer = pipeline.start_trainer("--promotion-tolerance", "1.0")
    summary, _ = pipeline.sample_app("--n", "50", "--rate", "0")
    assert summary["unanswered"] == 0
    pipeline.wait_for_event("training_completed", 1, 300, service=trainer, version=2, promoted=True)
    trainer.kill9()  # the request's offset may be uncommitted: the restart handles it again
    # Ready: it has finished the newest version again (announcing it only if it never was).
    pipeline.start_trainer("--promotion-tolerance", "1.0")
    completed = [
        m["version"]
        for m in pipeline.read_topic("retrain_topic", read_committed=True)
        if m["event"] == "training_completed"
    ]
    assert completed.count(2) == 1, completed
    requested = [
        m["observations_end_offset"]
        for m in pipeline.read_topic("retrain_topic", read_committed=True)
        if m["event"] == "retrain_requested"
    ]
    # Commit markers take offsets too: the request's end is at or a little past offset 50.
    assert len(requested) == 1 and 50 <= requested[0] <= 60, requested
