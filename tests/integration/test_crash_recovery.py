"""kill -9 at the worst moments, then a restart: nothing unanswered, no retrain lost, no version gap."""

import json
import time
from collections import Counter

from tests.integration.figures import record_figures


def test_predictor_killed_mid_stream_loses_nothing(pipeline):
    predictor = pipeline.start_predictor("--retrain-every", "100000")
    app, summary_path = pipeline.start_sample_app("--n", "3000", "--rate", "600", "--timeout", "120")
    # Kill once answers are flowing and thousands of requests are still unsent or unanswered.
    answered_before = pipeline.wait_for_answers(at_least=200)
    predictor.kill9()
    killed_at = time.monotonic()
    answered_at_kill = pipeline.wait_for_answers(at_least=0)
    restarted = pipeline.start_predictor("--retrain-every", "100000")
    pipeline.wait_for_answers(at_least=answered_at_kill + 1, timeout_s=120)
    answers_resumed_s = time.monotonic() - killed_at
    assert app.process.wait(timeout=240) == 0, app.tail()
    summary = json.loads(summary_path.read_text())
    assert summary["sent"] == 3000
    assert summary["answered"] == 3000 and summary["unanswered"] == 0
    answers = Counter(a["request_id"] for a in pipeline.read_topic("predictions"))
    assert len(answers) == 3000
    repeated = sum(count - 1 for count in answers.values())
    assert repeated == summary["repeated_answers"]
    record_figures(
        "predictor_kill9",
        {
            "sent": summary["sent"],
            "answered": summary["answered"],
            "answered_before_kill": answered_before,
            "repeated_answers": repeated,
            "kill_to_answers_resumed_s": round(answers_resumed_s, 1),
        },
    )
    assert restarted.process.poll() is None


def test_trainer_killed_mid_retrain_completes_it_once(pipeline):
    predictor = pipeline.start_predictor("--retrain-every", "50")
    trainer = pipeline.start_trainer("--max-evals", "6", "--promotion-tolerance", "1.0")
    summary, _ = pipeline.sample_app("--n", "50", "--rate", "0", "--timeout", "60")
    assert summary["unanswered"] == 0
    trainer.wait_for_metric("pipeline_retrain_end_offset", lambda end: end == 50, 120)
    time.sleep(3)  # inside the tuning session: MLflow run open, trials running
    trainer.kill9()
    store = pipeline.root / "models"
    assert sorted(p.name for p in store.iterdir() if p.name.isdigit()) == ["1"]

    killed_at = time.monotonic()
    restarted = pipeline.start_trainer("--max-evals", "2", "--promotion-tolerance", "1.0")
    pipeline.wait_for_event("training_completed", 1, 300, service=restarted, version=2, promoted=True)
    recovery_s = time.monotonic() - killed_at
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 60)
    assert restarted.metric("pipeline_retrains_started_total") == 1, "the restart retrained once"

    assert sorted(p.name for p in store.iterdir() if p.name.isdigit()) == ["1", "2"]
    assert not list(store.glob(".incoming-*")), "no half-written version left behind"
    completed = [m for m in pipeline.read_topic("retrain_topic") if m["event"] == "training_completed"]
    assert [m["version"] for m in completed if m["version"] == 2] == [2], "version 2 announced once"
    summary, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--start", "50", "--timeout", "60")
    assert summary["model_versions"] == [2] and summary["unanswered"] == 0
    record_figures("trainer_kill9", {"versions": [1, 2], "kill_to_version_2_s": round(recovery_s, 1)})
