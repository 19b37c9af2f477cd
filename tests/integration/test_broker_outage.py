"""The broker stops for ~15 s under steady load: services stay up, wait, reconnect, answer all."""

import json
import time

from tests.integration.figures import record_figures


def test_services_ride_out_a_broker_outage(private_pipeline, private_broker):
    pipeline = private_pipeline
    predictor = pipeline.start_predictor("--retrain-every", "100")
    trainer = pipeline.start_trainer("--promotion-tolerance", "1.0")
    app, summary_path = pipeline.start_sample_app("--n", "1500", "--rate", "40", "--timeout", "180")
    time.sleep(8)
    private_broker.stop()
    stopped_at = time.monotonic()
    time.sleep(15)
    private_broker.start()
    outage_s = time.monotonic() - stopped_at
    answered_during_outage = pipeline.wait_for_answers(at_least=0)
    pipeline.wait_for_answers(at_least=answered_during_outage + 1, timeout_s=120)
    broker_up_to_answers_s = time.monotonic() - stopped_at - outage_s

    assert app.process.wait(timeout=300) == 0, app.tail()
    summary = json.loads(summary_path.read_text())
    assert summary["sent"] == 1500 and summary["unanswered"] == 0 and summary["errors"] == 0
    assert predictor.process.poll() is None and trainer.process.poll() is None, "services stayed up"
    for service in (predictor, trainer):
        # Idle services notice through their polls, busy ones while waiting for acknowledgements.
        service.wait_for_log("Kafka unreachable, waiting and retrying|waiting for broker acknowledgements", 1)
    record_figures(
        "broker_outage",
        {
            "outage_s": round(outage_s, 1),
            "broker_up_to_first_answer_s": round(broker_up_to_answers_s, 1),
            "sent": summary["sent"],
            "answered": summary["answered"],
            "repeated_answers": summary["repeated_answers"],
            "latency_p99_ms": summary["latency_ms"]["p99"],
        },
    )
