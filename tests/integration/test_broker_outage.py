"""The broker stops for ~15 s under steady load: services stay up, wait, reconnect, answer all."""

from __future__ import annotations

import json
import threading
import time

from tests.integration.figures import record_figures
from tests.integration.processes import ServiceProcess


class LowestValue:
    """The lowest value one of a service's samples takes while watched (read every 0.2 s in the
    background): a gauge that dips during an outage and is back before the test looks."""

    def __init__(self, service: ServiceProcess, sample: str):
        self.service = service
        self.sample = sample
        self.lowest: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            value = self.service.metrics().get(self.sample)
            if value is not None and (self.lowest is None or value < self.lowest):
                self.lowest = value

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return self.lowest


def test_services_ride_out_a_broker_outage(private_pipeline, private_broker):
    pipeline = private_pipeline
    predictor = pipeline.start_predictor("--retrain-every", "100")
    trainer = pipeline.start_trainer("--promotion-tolerance", "1.0")
    app, summary_path = pipeline.start_sample_app("--n", "1500", "--rate", "40", "--timeout", "180")
    time.sleep(8)
    services = (predictor, trainer)
    for service in services:
        assert service.metric("pipeline_kafka_reachable") == 1, f"{service.name}: Kafka reachable before"
    # Watched until all is answered: a service busy retraining or announcing when the broker stops
    # says so only once that step returns, which can be after the broker is back.
    reachable = [LowestValue(service, "pipeline_kafka_reachable") for service in services]
    private_broker.stop()
    stopped_at = time.monotonic()
    time.sleep(15)
    private_broker.start()
    outage_s = time.monotonic() - stopped_at
    answered_during_outage = pipeline.wait_for_answers(at_least=0)
    pipeline.wait_for_answers(at_least=answered_during_outage + 1, timeout_s=120)
    broker_up_to_answers_s = time.monotonic() - stopped_at - outage_s

    assert app.process.wait(timeout=300) == 0, app.tail()
    lowest = [watch.stop() for watch in reachable]
    summary = json.loads(summary_path.read_text())
    assert summary["sent"] == 1500 and summary["unanswered"] == 0 and summary["errors"] == 0
    assert predictor.process.poll() is None and trainer.process.poll() is None, "services stayed up"
    for service, low in zip(services, lowest, strict=True):
        assert low == 0, f"{service.name}: pipeline_kafka_reachable never 0 during the outage (lowest {low})"
        service.wait_for_metric("pipeline_kafka_reachable", lambda value: value == 1, 60)
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
