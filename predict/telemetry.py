"""What the predictor tells about itself: logs and Prometheus metrics of each batch's outcome and
of each model load, live quality per version (predict/reporting.py), the consumer lag. Only
observes: nothing here changes what is answered."""

from __future__ import annotations

import logging

from predict.batch import BatchOutcome
from predict.hot_swap import LoadResult, ModelSwapper
from predict.reporting import ServingReporter
from utils import metrics
from utils.kafka.interface import Consumer, KafkaError
from utils.messages.requests import CHALLENGER, CHAMPION

log = logging.getLogger(__name__)


class Telemetry:
    def __init__(self, reporter: ServingReporter, swapper: ModelSwapper, refusal_is_error: bool = False):
        self.reporter = reporter
        self.swapper = swapper
        self.refusal_is_error = refusal_is_error  # --scorer compiled: a compiled form was asked for

    def started(self) -> None:
        metrics.MODEL_VERSION.set(self.swapper.current.version)
        metrics.COMPILED_SCORING.set(0)
        self.roles_changed()

    def roles_changed(self) -> None:
        metrics.ROLE_VERSION.labels(role=CHAMPION).set(self.swapper.current.version)
        metrics.ROLE_VERSION.labels(role=CHALLENGER).set(self.swapper.rollout.version if self.swapper.rollout else 0)
        metrics.CHALLENGER_LOADED.set(self.swapper.challenger.version if self.swapper.challenger else 0)

    def swapped(self, version: int) -> None:
        metrics.MODEL_SWAPS.inc()
        metrics.MODEL_VERSION.set(version)
        metrics.COMPILED_SCORING.set(0)
        self.roles_changed()

    def loaded(self, result: LoadResult) -> None:
        """A model the background threads loaded, refused or compiled (already swapped in if it serves)."""
        if result.error is not None:
            metrics.MODELS_REFUSED.inc()
        elif result.compile_refused is not None:
            metrics.COMPILED_REFUSED.labels(reason=result.compile_refused).inc()
            if self.refusal_is_error:
                log.error(
                    "compiled form refused, LightGBM serves version=%s reason=%s",
                    result.version,
                    result.compile_refused,
                )
        elif result.role == CHALLENGER:
            self.roles_changed()  # on trial: it serves only if the rollout promotes it
        elif result.scorer is not None and result.scorer.compiled is not None:
            metrics.COMPILED_SCORING.set(1)
        else:
            self.swapped(result.version)

    def outcome(self, outcome: BatchOutcome) -> None:
        """Logs, metrics and live quality of a batch's outcome."""
        metrics.STAGE_SECONDS.labels(stage="validate").inc(outcome.validate_s)
        if outcome.scoring_failure is not None:
            log.error("scoring failed model_version=%s error=%s", self.swapper.current.version, outcome.scoring_failure)
        if outcome.scored is not None:
            scored = outcome.scored
            metrics.STAGE_SECONDS.labels(stage="transform").inc(scored.transform_s)
            metrics.STAGE_SECONDS.labels(stage="predict").inc(scored.predict_s)
            labels = [request.label for request in scored.requests]
            self.reporter.for_version(scored.model_version).add(scored.probabilities, labels)
            metrics.PREDICTIONS.labels(model_version=str(scored.model_version)).inc(len(scored.requests))
            if outcome.shadow is None:
                metrics.ANSWERS.labels(role=CHAMPION).inc(len(outcome.answers))
            else:  # the challenger's live quality, on the same requests
                shadow, theirs = outcome.shadow, [request.label for request in outcome.shadow.requests]
                self.reporter.for_version(shadow.model_version).add(shadow.probabilities, theirs)
                by_challenger = sum(answer.role == CHALLENGER for answer in outcome.answers)
                metrics.ANSWERS.labels(role=CHALLENGER).inc(by_challenger)
                metrics.ANSWERS.labels(role=CHAMPION).inc(len(outcome.answers) - by_challenger)
        for answer_format in outcome.answer_formats + outcome.error_formats:
            if answer_format != "plain":
                metrics.WIRE_REQUESTS.labels(format=answer_format).inc()
        for error in outcome.errors:
            log.info("request refused request_id=%s code=%s reason=%s", error.request_id, error.code, error.message)
            metrics.REQUEST_ERRORS.labels(code=error.code).inc()
        for dead in outcome.dead_letters:
            log.warning(
                "record dead-lettered code=%s partition=%s offset=%s reason=%s",
                dead.code,
                dead.partition,
                dead.offset,
                dead.reason,
            )
            metrics.DEAD_LETTERS.labels(code=dead.code).inc()

    def batch(self, records: int, seconds: float) -> None:
        metrics.REQUESTS.inc(records)
        metrics.BATCH_SIZE.observe(records)
        metrics.BATCH_SECONDS.observe(seconds)

    def lag(self, consumer: Consumer) -> None:
        assigned = list(consumer.assignment())
        if not assigned:
            return
        try:
            ends = consumer.end_offsets(assigned)
            metrics.CONSUMER_LAG.set(sum(max(0, ends[p] - consumer.position(p)) for p in assigned))
        except KafkaError as error:
            log.debug("consumer lag not measured error=%r", error)
